"""Keys never outlive what made them (issue 9, items 7 and 8): only a login token creates a
key or changes a password, a key lives at most MLOPS_API_KEY_MAX_TTL_DAYS, and a password
change revokes the owner's keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.auth.models import ApiKey
from mlops.auth.tokens import new_api_key
from tests.auth.throttle import use_clock
from tests.conftest import Platform, bearer, start_platform


async def _create_key(platform: Platform, credential: str, **body: Any) -> dict[str, Any]:
    response = await platform.client.post(
        "/api/v1/api-keys", json={"name": "ci", **body}, headers=bearer(credential)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _key_names(platform: Platform, token: str) -> list[str]:
    listed = await platform.client.get("/api/v1/api-keys", headers=bearer(token))
    return [item["name"] for item in listed.json()["items"]]


async def test_an_api_key_cannot_create_keys(platform: Platform, admin_token: str) -> None:
    key = (await _create_key(platform, admin_token))["key"]
    minted = await platform.client.post(
        "/api/v1/api-keys", json={"name": "child"}, headers=bearer(key)
    )
    assert minted.status_code == 403
    assert minted.json()["error"]["code"] == "login_token_required"
    assert "login token" in minted.json()["error"]["message"]
    assert await _key_names(platform, admin_token) == ["ci"]


async def test_a_revoked_or_expired_key_cannot_create_keys(
    platform: Platform, admin_token: str
) -> None:
    created = await _create_key(platform, admin_token)
    await platform.client.delete(f"/api/v1/api-keys/{created['id']}", headers=bearer(admin_token))
    expired = new_api_key()
    async with platform.ctx.sessions() as session:
        session.add(
            ApiKey(
                prefix=expired.prefix,
                secret_hash=expired.secret_hash,
                name="expired",
                role="admin",
                owner_id=1,
                expires_at=datetime.now(UTC) - timedelta(minutes=2),
            )
        )
        await session.commit()
    for key in (created["key"], expired.key):
        minted = await platform.client.post(
            "/api/v1/api-keys", json={"name": "child"}, headers=bearer(key)
        )
        assert minted.status_code == 401
    assert await _key_names(platform, admin_token) == ["ci", "expired"]


async def test_a_key_without_expiry_gets_the_longest_lifetime(settings_factory: Any) -> None:
    async for platform in start_platform(settings_factory(api_key_max_ttl_days=7)):
        token = await platform.login()
        before = datetime.now(UTC)
        created = await _create_key(platform, token)
        expires = datetime.fromisoformat(created["expires_at"])
        assert before + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)
        within = (before + timedelta(days=6)).isoformat()
        assert (await _create_key(platform, token, expires_at=within))["expires_at"]


async def test_an_expiry_beyond_the_longest_lifetime_is_refused(
    platform: Platform, admin_token: str
) -> None:
    too_late = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    response = await platform.client.post(
        "/api/v1/api-keys",
        json={"name": "forever", "expires_at": too_late},
        headers=bearer(admin_token),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_expiry"
    assert "at most 90 days" in error["message"]
    assert "MLOPS_API_KEY_MAX_TTL_DAYS" in error["message"]
    assert await _key_names(platform, admin_token) == []


async def test_a_password_change_revokes_the_owners_keys(
    platform: Platform, admin_token: str
) -> None:
    password = await platform.create_user(admin_token, "hana", "editor")
    token = await platform.login("hana", password)
    key = (await _create_key(platform, token))["key"]
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(key))).status_code == 200
    changed = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": password, "new_password": "Hana-New-Passphrase-8"},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    refused = await platform.client.get("/api/v1/users/me", headers=bearer(key))
    assert refused.status_code == 401
    fresh = await platform.login("hana", "Hana-New-Passphrase-8")
    listed = await platform.client.get("/api/v1/api-keys", headers=bearer(fresh))
    assert [item["revoked_at"] is not None for item in listed.json()["items"]] == [True]


async def test_an_api_key_cannot_change_the_password(platform: Platform, admin_token: str) -> None:
    password = await platform.create_user(admin_token, "ines", "viewer")
    key = (await _create_key(platform, await platform.login("ines", password)))["key"]
    response = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": password, "new_password": "Ines-New-Passphrase-8"},
        headers=bearer(key),
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "login_token_required"
    assert await platform.login("ines", password)


async def _change_password(platform: Platform, token: str, old: str) -> int:
    response = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": old, "new_password": "Jo-New-Passphrase-88"},
        headers=bearer(token),
    )
    return response.status_code


async def test_wrong_old_passwords_are_throttled_like_logins(settings_factory: Any) -> None:
    async for platform in start_platform(settings_factory(login_failures_per_pair=3)):
        clock = use_clock(platform)
        admin = await platform.login()
        password = await platform.create_user(admin, "jo", "viewer")
        token = await platform.login("jo", password)
        guesses = [await _change_password(platform, token, f"guess-{i}-xx") for i in range(3)]
        assert guesses == [403, 403, 403]
        # Throttled now, even the right guess: no hash is computed while waiting.
        assert await _change_password(platform, token, password) == 429
        login = await platform.client.post(
            "/api/v1/auth/login", json={"username": "jo", "password": password}
        )
        assert login.status_code == 429
        clock.advance(1)
        assert await _change_password(platform, token, password) == 204
