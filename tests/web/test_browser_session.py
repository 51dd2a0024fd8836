"""The browser session: an HttpOnly cookie holds the token, writes need the CSRF token."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import ADMIN_PASSWORD, Platform, bearer, start_platform

LOGIN = {"username": "admin", "password": ADMIN_PASSWORD}


async def sign_in(platform: Platform) -> tuple[httpx.Response, str]:
    response = await platform.client.post("/api/v1/auth/session", json=LOGIN)
    assert response.status_code == 200, response.text
    cookie = platform.client.cookies.get("mlops_session")
    assert cookie
    return response, cookie


async def test_sign_in_sets_an_httponly_strict_cookie_and_hides_the_token(
    platform: Platform,
) -> None:
    response, cookie = await sign_in(platform)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header
    assert "samesite=strict" in header
    assert "path=/" in header
    assert "secure" not in header  # development serves plain http on loopback
    body = response.json()
    assert body["username"] == "admin" and body["role"] == "admin"
    assert cookie not in response.text  # page scripts never see the credential
    assert response.headers["cache-control"] == "no-store"
    me = await platform.client.get("/api/v1/users/me")
    assert me.status_code == 200
    assert me.json()["authenticated_via"] == "token"


async def test_cookie_is_secure_outside_development(settings_factory: Any) -> None:
    settings = settings_factory(environment="staging", metrics_token="m" * 40)
    async for platform in start_platform(settings):
        response, _ = await sign_in(platform)
        assert "secure" in response.headers["set-cookie"].lower()


async def test_wrong_password_sets_no_cookie(platform: Platform) -> None:
    response = await platform.client.post(
        "/api/v1/auth/session", json={"username": "admin", "password": "wrong-password-1"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert "set-cookie" not in response.headers


async def test_a_write_with_the_cookie_needs_the_csrf_token(platform: Platform) -> None:
    response, _ = await sign_in(platform)
    csrf = response.json()["csrf_token"]
    refused = await platform.client.post("/api/v1/models", json={"name": "forged"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert "X-CSRF-Token" in refused.json()["error"]["message"]
    wrong = await platform.client.post(
        "/api/v1/models",
        json={"name": "forged"},
        headers={"X-CSRF-Token": csrf[:-1] + ("1" if csrf[-1] == "0" else "0")},
    )
    assert wrong.status_code == 403
    listed = await platform.client.get("/api/v1/models?prefix=forged")
    assert listed.json()["total"] == 0  # nothing was written
    created = await platform.client.post(
        "/api/v1/models", json={"name": "real"}, headers={"X-CSRF-Token": csrf}
    )
    assert created.status_code == 201, created.text
    # The session's own answer gives the same token back after a reload.
    again = await platform.client.get("/api/v1/auth/session")
    assert again.json()["csrf_token"] == csrf


async def test_sign_out_revokes_the_token_everywhere(platform: Platform) -> None:
    response, cookie = await sign_in(platform)
    csrf = response.json()["csrf_token"]
    # Without the CSRF token another site cannot sign the user out (or in as anyone).
    kept = await platform.client.delete("/api/v1/auth/session")
    assert kept.status_code == 403
    ended = await platform.client.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 204
    assert 'mlops_session=""' in ended.headers["set-cookie"] or "max-age=0" in (
        ended.headers["set-cookie"].lower()
    )
    # The same token, as a cookie or as a bearer token, is refused from now on.
    platform.client.cookies.clear()
    as_bearer = await platform.client.get("/api/v1/users/me", headers=bearer(cookie))
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"]["code"] == "token_revoked"
    platform.client.cookies.set("mlops_session", cookie)
    as_cookie = await platform.client.get("/api/v1/auth/session")
    assert as_cookie.status_code == 401


async def test_api_logout_ends_the_browser_session(platform: Platform) -> None:
    _, cookie = await sign_in(platform)
    platform.client.cookies.clear()
    out = await platform.client.post("/api/v1/auth/logout", headers=bearer(cookie))
    assert out.status_code == 204
    platform.client.cookies.set("mlops_session", cookie)
    assert (await platform.client.get("/api/v1/auth/session")).status_code == 401


async def test_an_api_key_in_the_cookie_is_refused(platform: Platform) -> None:
    token = await platform.login()
    created = await platform.client.post(
        "/api/v1/api-keys", json={"name": "k"}, headers=bearer(token)
    )
    platform.client.cookies.set("mlops_session", created.json()["key"])
    answer = await platform.client.get("/api/v1/users/me")
    assert answer.status_code == 401


async def test_no_session_answers_401_with_where_to_sign_in(platform: Platform) -> None:
    answer = await platform.client.get("/api/v1/auth/session")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "no_session"


async def test_a_bearer_header_wins_over_the_cookie(platform: Platform) -> None:
    # A script holding an API key does not need the CSRF token: the header is not ambient.
    _, _ = await sign_in(platform)
    token = await platform.login()
    created = await platform.client.post(
        "/api/v1/models", json={"name": "by-header"}, headers=bearer(token)
    )
    assert created.status_code == 201


async def test_a_cross_site_form_cannot_sign_a_browser_in(platform: Platform) -> None:
    # Forms of another site can send text/plain or form bodies without a preflight, never
    # JSON: neither is read as a sign-in, so no one is signed in as the attacker.
    body = json.dumps(LOGIN)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        answer = await platform.client.post(
            "/api/v1/auth/session", content=body, headers={"Content-Type": content_type}
        )
        assert answer.status_code == 422, (content_type, answer.text)
        assert "set-cookie" not in answer.headers
