"""API keys: secret shown once, stored hashed, scoped to their owner and role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mlops.auth.models import ApiKey
from mlops.auth.tokens import parse_api_key
from tests.conftest import Platform, bearer


async def _key(platform: Platform, token: str, **body: object) -> dict[str, object]:
    response = await platform.client.post("/api/v1/api-keys", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_key_works_as_bearer_and_is_stored_hashed(
    platform: Platform, admin_token: str
) -> None:
    created = await _key(platform, admin_token, name="ci", role="viewer")
    key = str(created["key"])
    me = await platform.client.get("/api/v1/users/me", headers=bearer(key))
    assert me.json() == {
        "id": 1, "username": "admin", "role": "viewer", "authenticated_via": "api_key"
    }  # fmt: skip
    listed = await platform.client.get("/api/v1/api-keys", headers=bearer(admin_token))
    assert "key" not in listed.json()["items"][0]
    async with platform.ctx.sessions() as session:
        row = (await session.scalars(select(ApiKey))).one()
    parsed = parse_api_key(key)
    assert parsed is not None
    prefix, secret = parsed  # the secret may itself hold "_": split by the key's format
    assert prefix == row.prefix
    assert secret not in row.secret_hash


async def test_key_role_may_not_exceed_creator(platform: Platform, admin_token: str) -> None:
    password = await platform.create_user(admin_token, "ed", "editor")
    token = await platform.login("ed", password)
    response = await platform.client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "admin"}, headers=bearer(token)
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_too_high"
    created = await _key(platform, token, name="default-role")
    assert created["role"] == "editor"


async def test_users_cannot_see_or_revoke_each_others_keys(
    platform: Platform, admin_token: str
) -> None:
    alice = await platform.login(
        "alice", await platform.create_user(admin_token, "alice", "editor")
    )
    bob = await platform.login("bob", await platform.create_user(admin_token, "bob", "editor"))
    alice_key = await _key(platform, alice, name="alice-key")
    bob_list = await platform.client.get("/api/v1/api-keys", headers=bearer(bob))
    assert bob_list.json()["items"] == []
    forbidden_all = await platform.client.get("/api/v1/api-keys?all=true", headers=bearer(bob))
    assert forbidden_all.status_code == 403
    steal = await platform.client.delete(f"/api/v1/api-keys/{alice_key['id']}", headers=bearer(bob))
    assert steal.status_code == 404
    still = await platform.client.get("/api/v1/users/me", headers=bearer(str(alice_key["key"])))
    assert still.status_code == 200
    every = await platform.client.get("/api/v1/api-keys?all=true", headers=bearer(admin_token))
    assert [k["owner"] for k in every.json()["items"]] == ["alice"]


async def test_revoked_key_stops_at_once(platform: Platform, admin_token: str) -> None:
    created = await _key(platform, admin_token, name="short-lived")
    key = str(created["key"])
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(key))).status_code == 200
    response = await platform.client.delete(
        f"/api/v1/api-keys/{created['id']}", headers=bearer(admin_token)
    )
    assert response.status_code == 204
    after = await platform.client.get("/api/v1/users/me", headers=bearer(key))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_api_key"


async def test_expiry(platform: Platform, admin_token: str) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await platform.client.post(
        "/api/v1/api-keys", json={"name": "old", "expires_at": past}, headers=bearer(admin_token)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_expiry"
    naive = await platform.client.post(
        "/api/v1/api-keys",
        json={"name": "naive", "expires_at": "2030-01-01T00:00:00"},
        headers=bearer(admin_token),
    )
    assert naive.status_code == 422
    assert naive.json()["error"]["code"] == "validation_error"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    created = await _key(platform, admin_token, name="soon", expires_at=expires.isoformat())
    key = str(created["key"])
    # The gate's clock moves instead of the test waiting: a second before, then at expiry.
    gate = platform.ctx.gate
    gate.wall_clock = lambda: expires.timestamp() - 1
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(key))).status_code == 200
    gate.wall_clock = lambda: expires.timestamp()
    expired = await platform.client.get("/api/v1/users/me", headers=bearer(key))
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        ("mlops_000000000000_nope", "invalid_api_key"),  # shaped like a key: no such key
        # Not shaped like a key, so read as a token, and no token either.
        ("mlops_short_x", "invalid_token"),
        ("mlops_", "invalid_token"),
        ("mlops_abcdefabcdef_" + "x" * 200, "invalid_token"),
    ],
)
async def test_malformed_or_unknown_keys(platform: Platform, credential: str, code: str) -> None:
    response = await platform.client.get("/api/v1/users/me", headers=bearer(credential))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


async def test_demoted_owner_limits_the_key(platform: Platform, admin_token: str) -> None:
    token = await platform.login("ivy", await platform.create_user(admin_token, "ivy", "editor"))
    key = str((await _key(platform, token, name="k"))["key"])
    await platform.client.patch(
        "/api/v1/users/ivy", json={"role": "viewer"}, headers=bearer(admin_token)
    )
    me = await platform.client.get("/api/v1/users/me", headers=bearer(key))
    assert me.json()["role"] == "viewer"


async def test_logout_with_an_api_key_is_refused(platform: Platform, admin_token: str) -> None:
    key = str((await _key(platform, admin_token, name="k"))["key"])
    response = await platform.client.post("/api/v1/auth/logout", headers=bearer(key))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_a_token"
