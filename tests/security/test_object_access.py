"""Object-level checks beside the route × role matrix: what a caller may do to other
users' things and to their own standing (issue 16 part 2)."""

from __future__ import annotations

import httpx

from tests.conftest import Platform, bearer


def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def _key(platform: Platform, token: str, **body: str) -> tuple[int, str]:
    response = await platform.client.post(
        "/api/v1/api-keys", json={"name": "k", **body}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def _me(platform: Platform, credential: str) -> httpx.Response:
    return await platform.client.get("/api/v1/users/me", headers=bearer(credential))


async def test_an_editor_cannot_revoke_or_list_another_users_keys(
    platform: Platform, admin_token: str
) -> None:
    password = await platform.create_user(admin_token, "ed", "editor")
    editor = await platform.login("ed", password)
    admin_key_id, admin_key = await _key(platform, admin_token)
    revoke = await platform.client.delete(
        f"/api/v1/api-keys/{admin_key_id}", headers=bearer(editor)
    )
    # Another user's key looks exactly like a missing one.
    assert _code(revoke) == (404, "api_key_not_found")
    assert (await _me(platform, admin_key)).status_code == 200
    listed = await platform.client.get("/api/v1/api-keys", headers=bearer(editor))
    assert listed.json()["items"] == []
    everyone = await platform.client.get("/api/v1/api-keys?all=true", headers=bearer(editor))
    assert _code(everyone) == (403, "forbidden")


async def test_an_editor_cannot_touch_another_users_password_or_standing(
    platform: Platform, admin_token: str
) -> None:
    editor_password = await platform.create_user(admin_token, "ed", "editor")
    viewer_password = await platform.create_user(admin_token, "vi", "viewer")
    editor = await platform.login("ed", editor_password)
    for body in ({"disabled": True}, {"role": "viewer"}):
        response = await platform.client.patch(
            "/api/v1/users/vi", json=body, headers=bearer(editor)
        )
        assert _code(response) == (403, "forbidden")
    # /users/me/password changes the caller's own password, whatever else is sent.
    response = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": viewer_password, "new_password": "Taken-Over-Passphrase-9"},
        headers=bearer(editor),
    )
    assert _code(response) == (403, "wrong_password")
    await platform.login("vi", viewer_password)  # unchanged
    await platform.login("ed", editor_password)


async def test_no_one_can_raise_their_own_role(platform: Platform, admin_token: str) -> None:
    for role in ("viewer", "editor"):
        password = await platform.create_user(admin_token, f"u-{role}", role)
        token = await platform.login(f"u-{role}", password)
        response = await platform.client.patch(
            f"/api/v1/users/u-{role}", json={"role": "admin"}, headers=bearer(token)
        )
        assert _code(response) == (403, "forbidden")
        assert (await _me(platform, token)).json()["role"] == role
    # An admin may not change their own role or disable themselves either.
    for body in ({"role": "viewer"}, {"disabled": True}):
        response = await platform.client.patch(
            "/api/v1/users/admin", json=body, headers=bearer(admin_token)
        )
        assert _code(response) == (403, "self_modification")


async def test_a_key_cannot_create_a_key_nor_one_stronger_than_its_maker(
    platform: Platform, admin_token: str
) -> None:
    password = await platform.create_user(admin_token, "vi", "viewer")
    viewer = await platform.login("vi", password)
    _, viewer_key = await _key(platform, viewer)
    for role in ("viewer", "editor", "admin"):
        by_key = await platform.client.post(
            "/api/v1/api-keys", json={"name": "up", "role": role}, headers=bearer(viewer_key)
        )
        assert _code(by_key) == (403, "login_token_required")
    for role in ("editor", "admin"):
        by_token = await platform.client.post(
            "/api/v1/api-keys", json={"name": "up", "role": role}, headers=bearer(viewer)
        )
        assert _code(by_token) == (403, "role_too_high")
    # An admin's key made weaker stays weaker.
    _, weak_admin_key = await _key(platform, admin_token, role="viewer")
    assert (await _me(platform, weak_admin_key)).json()["role"] == "viewer"
    create = await platform.client.post(
        "/api/v1/users",
        json={"username": "sneaky", "password": "Sneaky-Passphrase-42"},
        headers=bearer(weak_admin_key),
    )
    assert _code(create) == (403, "forbidden")


async def test_a_key_loses_the_power_its_maker_loses(platform: Platform, admin_token: str) -> None:
    password = await platform.create_user(admin_token, "ed", "editor")
    editor = await platform.login("ed", password)
    _, editor_key = await _key(platform, editor)
    created = await platform.client.post(
        "/api/v1/models", json={"name": "by-key"}, headers=bearer(editor_key)
    )
    assert created.status_code == 201, created.text
    demoted = await platform.client.patch(
        "/api/v1/users/ed", json={"role": "viewer"}, headers=bearer(admin_token)
    )
    assert demoted.status_code == 200, demoted.text
    assert (await _me(platform, editor_key)).json()["role"] == "viewer"
    again = await platform.client.post(
        "/api/v1/models", json={"name": "by-key-2"}, headers=bearer(editor_key)
    )
    assert _code(again) == (403, "forbidden")
    assert (await _me(platform, admin_token)).json()["role"] == "admin"
