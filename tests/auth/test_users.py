"""Users: roles, admin-only endpoints, disabling, password changes and policy."""

from __future__ import annotations

from tests.conftest import Platform, bearer

ADMIN_ENDPOINTS = [
    ("POST", "/api/v1/users", {"username": "mal", "password": "Mallory-Pass-12", "role": "admin"}),
    ("GET", "/api/v1/users", None),
    ("PATCH", "/api/v1/users/admin", {"disabled": True}),
    ("GET", "/api/v1/api-keys?all=true", None),
]  # fmt: skip


async def test_viewer_and_editor_get_403_on_every_admin_endpoint(
    platform: Platform, admin_token: str
) -> None:
    for role in ("viewer", "editor"):
        password = await platform.create_user(admin_token, f"a-{role}", role)
        token = await platform.login(f"a-{role}", password)
        for method, path, body in ADMIN_ENDPOINTS:
            response = await platform.client.request(method, path, json=body, headers=bearer(token))
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"


async def test_admin_creates_lists_and_changes_users(platform: Platform, admin_token: str) -> None:
    await platform.create_user(admin_token, "carol", "editor")
    listed = await platform.client.get("/api/v1/users", headers=bearer(admin_token))
    names = {u["username"]: u["role"] for u in listed.json()["items"]}
    assert names == {"admin": "admin", "carol": "editor"}
    duplicate = await platform.client.post(
        "/api/v1/users",
        json={"username": "carol", "password": "Another-Passphrase-9", "role": "viewer"},
        headers=bearer(admin_token),
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "user_exists"
    changed = await platform.client.patch(
        "/api/v1/users/carol", json={"role": "viewer"}, headers=bearer(admin_token)
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    missing = await platform.client.patch(
        "/api/v1/users/nobody", json={"role": "viewer"}, headers=bearer(admin_token)
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "user_not_found"


async def test_role_change_ends_old_tokens(platform: Platform, admin_token: str) -> None:
    password = await platform.create_user(admin_token, "dave", "editor")
    token = await platform.login("dave", password)
    # Used once first, so the gate has built (and kept) this token's principal.
    before = await platform.client.get("/api/v1/users/me", headers=bearer(token))
    assert before.json()["role"] == "editor"
    await platform.client.patch(
        "/api/v1/users/dave", json={"role": "viewer"}, headers=bearer(admin_token)
    )
    old = await platform.client.get("/api/v1/users/me", headers=bearer(token))
    assert old.status_code == 401
    assert old.json()["error"]["code"] == "token_revoked"
    fresh = await platform.login("dave", password)
    me = await platform.client.get("/api/v1/users/me", headers=bearer(fresh))
    assert me.json()["role"] == "viewer"


async def test_disabling_ends_tokens_and_keys_at_once(platform: Platform, admin_token: str) -> None:
    password = await platform.create_user(admin_token, "erin", "editor")
    token = await platform.login("erin", password)
    created = await platform.client.post(
        "/api/v1/api-keys", json={"name": "laptop"}, headers=bearer(token)
    )
    key = created.json()["key"]
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(key))).status_code == 200
    disabled = await platform.client.patch(
        "/api/v1/users/erin", json={"disabled": True}, headers=bearer(admin_token)
    )
    assert disabled.json()["disabled"] is True
    for credential in (token, key):
        response = await platform.client.get("/api/v1/users/me", headers=bearer(credential))
        assert response.status_code == 401
    login = await platform.client.post(
        "/api/v1/auth/login", json={"username": "erin", "password": password}
    )
    assert login.status_code == 401
    # Enabling again does not bring the old key back.
    await platform.client.patch(
        "/api/v1/users/erin", json={"disabled": False}, headers=bearer(admin_token)
    )
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(key))).status_code == 401
    assert await platform.login("erin", password)


async def test_admin_cannot_change_own_role_or_disable_self(
    platform: Platform, admin_token: str
) -> None:
    for body in ({"role": "viewer"}, {"disabled": True}):
        response = await platform.client.patch(
            "/api/v1/users/admin", json=body, headers=bearer(admin_token)
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "self_modification"


async def test_unknown_fields_are_refused_not_ignored(platform: Platform, admin_token: str) -> None:
    response = await platform.client.patch(
        "/api/v1/users/admin", json={"password_hash": "x"}, headers=bearer(admin_token)
    )
    assert response.status_code == 422


async def test_password_change_ends_existing_tokens(platform: Platform, admin_token: str) -> None:
    password = await platform.create_user(admin_token, "frank", "viewer")
    token = await platform.login("frank", password)
    wrong_old = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": "not-my-password", "new_password": "Brand-New-Passphrase-7"},
        headers=bearer(token),
    )
    assert wrong_old.status_code == 403
    assert wrong_old.json()["error"]["code"] == "wrong_password"
    changed = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": password, "new_password": "Brand-New-Passphrase-7"},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(token))).status_code == 401
    assert await platform.login("frank", "Brand-New-Passphrase-7")


async def test_password_policy_applies_to_everyone(platform: Platform, admin_token: str) -> None:
    weak = ["short-1", "admin123", "password1234", "qwerty123456", "aaaaaaaaaaaaaaa"]
    for password in weak:
        response = await platform.client.post(
            "/api/v1/users",
            json={"username": "gina", "password": password, "role": "viewer"},
            headers=bearer(admin_token),
        )
        assert response.status_code == 422, password
        assert response.json()["error"]["code"] == "weak_password"
    listed = await platform.client.get("/api/v1/users", headers=bearer(admin_token))
    assert [u["username"] for u in listed.json()["items"]] == ["admin"]


async def test_username_and_role_are_validated(platform: Platform, admin_token: str) -> None:
    for body in (
        {"username": "bad name", "password": "Good-Passphrase-12", "role": "viewer"},
        {"username": "ok-name", "password": "Good-Passphrase-12", "role": "superuser"},
    ):
        response = await platform.client.post(
            "/api/v1/users", json=body, headers=bearer(admin_token)
        )
        assert response.status_code == 422


async def test_user_and_key_lists_come_a_page_at_a_time(
    platform: Platform, admin_token: str
) -> None:
    for name in ("pa", "pb", "pc"):
        await platform.create_user(admin_token, name, "viewer")
    for name in ("k1", "k2", "k3"):
        created = await platform.client.post(
            "/api/v1/api-keys", json={"name": name}, headers=bearer(admin_token)
        )
        assert created.status_code == 201
    for path, expected in (("/api/v1/users", ["pa", "pb"]), ("/api/v1/api-keys", ["k2", "k3"])):
        page = await platform.client.get(f"{path}?limit=2&offset=1", headers=bearer(admin_token))
        assert page.status_code == 200, page.text
        body = page.json()
        assert (body["total"], body["limit"], body["offset"]) == (4 if "users" in path else 3, 2, 1)
        field = "username" if "users" in path else "name"
        assert [item[field] for item in body["items"]] == expected
        for bad in ("limit=0", "limit=501", "offset=-1", "limit=x"):
            refused = await platform.client.get(f"{path}?{bad}", headers=bearer(admin_token))
            assert refused.status_code == 422, (path, bad)
