"""schemathesis hooks for test_schema_conformance.py (``SCHEMATHESIS_HOOKS``).

Every operation runs as an admin, with a token kept for the whole run (logged in
again if an answer is 401). Logout ends the token it is sent, so each logout case
gets a fresh token of its own user; the admin's token lives on.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis

LOGOUT = "/api/v1/auth/logout"
LOGIN_ADDRESS = "127.0.0.2"


def _login(username: str, password: str) -> str:
    # From another loopback address: the fuzzed logins' failures throttle 127.0.0.1.
    transport = httpx.HTTPTransport(local_address=LOGIN_ADDRESS)
    with httpx.Client(transport=transport, timeout=30) as client:
        response = client.post(
            f"{os.environ['CONFORMANCE_URL']}/api/v1/auth/login",
            json={"username": username, "password": password},
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _bearer(case: Any, token: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.auth().skip_for(path=LOGOUT)
class AdminToken:
    def get(self, case: Any, ctx: Any) -> str:
        return _login("admin", os.environ["CONFORMANCE_ADMIN_PASSWORD"])

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)


@schemathesis.auth(refresh_interval=None).apply_to(path=LOGOUT)
class FreshLogoutToken:
    def get(self, case: Any, ctx: Any) -> str:
        return _login(
            os.environ["CONFORMANCE_LOGOUT_USER"], os.environ["CONFORMANCE_LOGOUT_PASSWORD"]
        )

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)
