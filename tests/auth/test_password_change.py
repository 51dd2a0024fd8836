"""A refused password change changes nothing: the same password again, or one the
policy refuses, is a 422 naming why, and the caller's token still works."""

from __future__ import annotations

import pytest

from tests.conftest import Platform, bearer


@pytest.mark.parametrize(
    ("new_password", "says"),
    [
        ("same", "must differ from the old one"),
        ("short-1", "at least 12 characters"),
        ("password1234", "common passwords"),
    ],
)
async def test_a_refused_change_keeps_the_old_password_and_token(
    platform: Platform, admin_token: str, new_password: str, says: str
) -> None:
    password = await platform.create_user(admin_token, "hana", "editor")
    token = await platform.login("hana", password)
    new = password if new_password == "same" else new_password
    response = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": password, "new_password": new},
        headers=bearer(token),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "weak_password"
    assert says in error["message"]
    me = await platform.client.get("/api/v1/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert await platform.login("hana", password)
