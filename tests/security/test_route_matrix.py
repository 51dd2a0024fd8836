"""Route × role matrix (issue 16 part 2): every operation of the OpenAPI document, for
anonymous callers, viewers, editors and admins each with a login token and with an API
key, and for credentials that must no longer work (a disabled user's token and key, an
expired token, a token issued before its user changed password). The expected answers
come from one table (route_table.py); a route missing from it fails here by name.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from mlops.auth.roles import Role
from mlops.auth.tokens import ALGORITHM, ISSUER
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, Platform, bearer
from tests.security.route_table import ROWS, VARIANTS, Answer, Row


@dataclass(frozen=True)
class Caller:
    """``role`` None: must be refused with 401 and ``refused_code``."""

    name: str
    role: Role | None
    kind: str  # "token", "key" or "none"
    headers: dict[str, str]
    password: str = ""
    refused_code: str | None = None


async def _key(platform: Platform, token: str, name: str) -> str:
    response = await platform.client.post(
        "/api/v1/api-keys", json={"name": name}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def _expired_token(valid_token: str) -> str:
    """The same user and token version as ``valid_token``, signed with the platform's
    key, but expired an hour ago: only the expiry is wrong."""
    claims = jwt.decode(valid_token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600, jti=uuid.uuid4().hex)
    assert claims["iss"] == ISSUER
    return jwt.encode(claims, SECRET_KEY, algorithm=ALGORITHM)


async def _callers(platform: Platform) -> list[Caller]:
    admin_token = await platform.login()
    callers = [
        Caller("anonymous", None, "none", {}, refused_code="unauthorized"),
        Caller("admin token", Role.admin, "token", bearer(admin_token), ADMIN_PASSWORD),
        Caller(
            "admin key",
            Role.admin,
            "key",
            bearer(await _key(platform, admin_token, "a")),
            ADMIN_PASSWORD,
        ),
    ]
    for role in (Role.viewer, Role.editor):
        name = f"matrix-{role.value}"
        password = await platform.create_user(admin_token, name, role.value)
        token = await platform.login(name, password)
        callers.append(Caller(f"{role.value} token", role, "token", bearer(token), password))
        key = await _key(platform, token, role.value)
        callers.append(Caller(f"{role.value} key", role, "key", bearer(key), password))

    # A disabled editor: neither the token nor the key it had works any more.
    password = await platform.create_user(admin_token, "matrix-disabled", "editor")
    token = await platform.login("matrix-disabled", password)
    key = await _key(platform, token, "disabled")
    disabled = await platform.client.patch(
        "/api/v1/users/matrix-disabled", json={"disabled": True}, headers=bearer(admin_token)
    )
    assert disabled.status_code == 200, disabled.text
    callers.append(
        Caller("disabled token", None, "token", bearer(token), refused_code="token_revoked")
    )
    callers.append(Caller("disabled key", None, "key", bearer(key), refused_code="invalid_api_key"))

    # A token from before its user's password change.
    password = await platform.create_user(admin_token, "matrix-stale", "editor")
    stale = await platform.login("matrix-stale", password)
    changed = await platform.client.post(
        "/api/v1/users/me/password",
        json={"old_password": password, "new_password": "A-Brand-New-Passphrase-77"},
        headers=bearer(stale),
    )
    assert changed.status_code == 204, changed.text
    callers.append(
        Caller("stale token", None, "token", bearer(stale), refused_code="token_revoked")
    )

    callers.append(
        Caller(
            "expired admin token",
            None,
            "token",
            bearer(_expired_token(admin_token)),
            refused_code="invalid_token",
        )
    )
    return callers


def _expected(row: Row, caller: Caller) -> Answer:
    if row.role is None:
        return row.allowed
    if caller.role is None:
        return (401, caller.refused_code)
    if not caller.role.allows(row.role):
        return (403, "forbidden")
    if caller.kind == "key" and row.with_key is not None:
        return row.with_key
    return row.allowed


async def _call(platform: Platform, row: Row, caller: Caller) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": {**caller.headers, **row.headers}}
    if row.body_for is not None:
        kwargs["json"] = row.body_for(caller.password)
    elif row.json is not None:
        kwargs["json"] = row.json
    elif row.content is not None:
        kwargs["content"] = row.content
    return await platform.client.request(row.method, row.path, **kwargs)


def _answer(response: httpx.Response) -> Answer:
    if response.status_code < 400:
        return (response.status_code, None)
    body = response.json()
    # The /v2 routes answer the Open Inference Protocol's shape, the code in a header.
    code = response.headers.get("x-error-code") or body["error"]["code"]
    return (response.status_code, code)


async def _documented_operations(platform: Platform) -> set[str]:
    document = (await platform.client.get("/openapi.json")).json()
    return {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
    }


async def test_the_table_covers_every_documented_operation(platform: Platform) -> None:
    documented = await _documented_operations(platform)
    tabled = {row.operation for row in ROWS}
    missing = sorted(documented - tabled)
    assert not missing, (
        "routes with no row in tests/security/route_table.py (add one: the least role "
        f"that may call it and the answer past authorization): {missing}"
    )
    assert not sorted(tabled - documented), "rows for routes the server does not have"
    assert len(tabled) == len(ROWS), "one row per operation"


async def test_every_route_answers_every_caller_as_the_table_says(platform: Platform) -> None:
    callers = await _callers(platform)
    wrong: list[str] = []
    for row in [*VARIANTS, *ROWS]:  # ROWS ends with logout
        for caller in callers:
            response = await _call(platform, row, caller)
            expected, got = _expected(row, caller), _answer(response)
            if got != expected:
                wrong.append(
                    f"{row.method} {row.path} as {caller.name}: expected {expected}, got {got}"
                )
            if got[0] == 401:
                assert response.headers.get("www-authenticate") == "Bearer", row.path
    assert not wrong, "\n".join(wrong)
    # Logout really ended each login token.
    for caller in callers:
        if caller.kind == "token" and caller.role is not None:
            me = await platform.client.get("/api/v1/users/me", headers=caller.headers)
            assert _answer(me) == (401, "token_revoked"), caller.name
