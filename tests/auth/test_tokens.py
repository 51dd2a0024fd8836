"""Every kind of bad token is a 401; logout ends a token everywhere."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from mlops.auth.tokens import ALGORITHM, ISSUER
from tests.conftest import SECRET_KEY, Platform, bearer, start_platform


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "1",
        "name": "admin",
        "role": "admin",
        "ver": 1,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "a" * 32,
    }
    claims.update(overrides)
    return claims


async def _status(platform: Platform, token: str) -> tuple[int, str]:
    response = await platform.client.get("/api/v1/users/me", headers=bearer(token))
    return response.status_code, response.json().get("error", {}).get("code", "")


async def test_a_well_signed_token_is_accepted(platform: Platform) -> None:
    token = jwt.encode(_claims(), SECRET_KEY, algorithm=ALGORITHM)
    assert (await _status(platform, token))[0] == 200


async def test_expired_token(platform: Platform) -> None:
    now = int(time.time())
    token = jwt.encode(_claims(iat=now - 900, nbf=now - 900, exp=now - 60), SECRET_KEY)
    assert await _status(platform, token) == (401, "invalid_token")


async def test_tampered_token(platform: Platform, admin_token: str) -> None:
    header, payload, signature = admin_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    claims["sub"] = "2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert await _status(platform, f"{header}.{forged}.{signature}") == (401, "invalid_token")


async def test_alg_none_token(platform: Platform) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    assert await _status(platform, f"{header}.{payload}.") == (401, "invalid_token")


async def test_other_algorithm_token(platform: Platform) -> None:
    token = jwt.encode(_claims(), SECRET_KEY, algorithm="HS512")
    assert await _status(platform, token) == (401, "invalid_token")


async def test_wrong_key_token(platform: Platform) -> None:
    token = jwt.encode(_claims(), "x" * 48, algorithm=ALGORITHM)
    assert await _status(platform, token) == (401, "invalid_token")


async def test_token_without_expiry(platform: Platform) -> None:
    claims = _claims()
    del claims["exp"]
    assert await _status(platform, jwt.encode(claims, SECRET_KEY)) == (401, "invalid_token")


async def test_garbage_and_missing_credentials(platform: Platform) -> None:
    assert (await _status(platform, "not-a-token"))[0] == 401
    missing = await platform.client.get("/api/v1/users/me")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    basic = await platform.client.get(
        "/api/v1/users/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}
    )
    assert basic.status_code == 401


async def test_logout_revokes_the_token(platform: Platform, admin_token: str) -> None:
    other = await platform.login()
    response = await platform.client.post("/api/v1/auth/logout", headers=bearer(admin_token))
    assert response.status_code == 204
    assert await _status(platform, admin_token) == (401, "token_revoked")
    # Only that token: another login of the same user still works.
    assert (await _status(platform, other))[0] == 200


async def test_revocation_survives_a_restart(settings_factory: Any) -> None:
    settings = settings_factory()
    async for platform in start_platform(settings):
        token = await platform.login()
        await platform.client.post("/api/v1/auth/logout", headers=bearer(token))
    async for restarted in start_platform(settings):
        assert await _status(restarted, token) == (401, "token_revoked")


async def test_logout_is_seen_by_another_process(settings_factory: Any, backend: str) -> None:
    """Two app instances share the database and, with Redis, the revocation cache."""
    settings = settings_factory()
    async for first in start_platform(settings):
        async for second in start_platform(settings):
            token = await first.login()
            assert (await _status(second, token))[0] == 200
            await first.client.post("/api/v1/auth/logout", headers=bearer(token))
            if backend == "postgres":
                assert await _status(second, token) == (401, "token_revoked")
            else:
                # In-process state is per process: the embedded mode runs one process.
                assert not first.ctx.kv.shared


def test_a_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops.auth import tokens
    from mlops.auth.roles import Role
    from mlops.errors import Unauthorized

    signer = tokens.TokenSigner(SECRET_KEY, ttl_seconds=60)
    token = signer.issue(user_id=1, username="admin", role=Role.admin, token_version=1)
    assert signer.decode(token).username == "admin"  # verified, now cached
    later = time.time() + 60 + tokens.LEEWAY_SECONDS + 1
    monkeypatch.setattr("mlops.auth.tokens.time.time", lambda: later)

    def full_check(_: str) -> tokens.TokenClaims:
        raise Unauthorized("expired")

    # Past its expiry the cached entry is not used: the token goes through full
    # verification again (which PyJWT fails on its own clock in real life).
    monkeypatch.setattr(signer, "_verify", full_check)
    with pytest.raises(Unauthorized):
        signer.decode(token)
