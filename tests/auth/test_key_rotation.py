"""Signing-key rotation: login tokens and browser sessions signed with a verify-only key
(MLOPS_SECRET_KEY_PREVIOUS) keep working until they expire; new ones use the new key;
a key in neither setting is refused as before."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from mlops.auth.browser_session import SESSION_COOKIE
from mlops.auth.tokens import ALGORITHM, ISSUER
from mlops.bootstrap import check_startup_settings
from mlops.config import load_settings, previous_secret_keys
from mlops.errors import ConfigError
from tests.auth.live_api import api_process
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, Platform, bearer, running_platform

OLD = SECRET_KEY
NEW = "n" * 40 + "-the-new-signing-key"
OTHER = "o" * 64


def _token(key: str, *, expires_in: int = 600) -> str:
    """A token for the first admin, signed with ``key`` as a platform with it signs."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "1",
        "name": "admin",
        "role": "admin",
        "ver": 1,
        "iat": now - 700 if expires_in < 0 else now,
        "nbf": now - 700 if expires_in < 0 else now,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


async def _status(platform: Platform, token: str) -> tuple[int, str]:
    response = await platform.client.get("/api/v1/users/me", headers=bearer(token))
    return response.status_code, response.json().get("error", {}).get("code", "")


def _signed_with(token: str, key: str) -> bool:
    try:
        jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER)
    except jwt.InvalidSignatureError:
        return False
    return True


def test_the_previous_keys_are_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_SECRET_KEY_PREVIOUS", f"{OLD},{OTHER}")
    settings = load_settings(data_dir=tmp_path, secret_key=NEW)
    assert previous_secret_keys(settings) == (OLD, OTHER)
    monkeypatch.setenv("MLOPS_SECRET_KEY_PREVIOUS", "")
    assert previous_secret_keys(load_settings(data_dir=tmp_path, secret_key=NEW)) == ()
    monkeypatch.setenv("MLOPS_SECRET_KEY_PREVOIUS", OLD)
    with pytest.raises(ConfigError, match="MLOPS_SECRET_KEY_PREVOIUS is not a setting"):
        load_settings(data_dir=tmp_path, secret_key=NEW)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_short_previous_key_is_refused_at_startup(tmp_path: Path, environment: str) -> None:
    base: dict[str, Any] = {
        "environment": environment,
        "data_dir": tmp_path,
        "secret_key": NEW,
        "admin_password": ADMIN_PASSWORD,
        "metrics_token": "m" * 32,
    }
    with pytest.raises(ConfigError, match="MLOPS_SECRET_KEY_PREVIOUS: key 1 of 1 is shorter"):
        check_startup_settings(load_settings(**base, secret_key_previous="short"))
    with pytest.raises(ConfigError, match="MLOPS_SECRET_KEY_PREVIOUS: key 2 of 2 is shorter"):
        check_startup_settings(load_settings(**base, secret_key_previous=f"{OLD},x" + "y" * 30))
    check_startup_settings(load_settings(**base, secret_key_previous=OLD))


async def test_a_token_of_the_previous_key_is_accepted_and_new_ones_use_the_new_key(
    settings_factory: Any,
) -> None:
    async with running_platform(settings_factory(secret_key=NEW, secret_key_previous=OLD)) as p:
        assert await _status(p, _token(OLD)) == (200, "")
        assert await _status(p, _token(NEW)) == (200, "")
        assert await _status(p, _token(OTHER)) == (401, "invalid_token")
        # The previous key verifies a signature, nothing more: expiry still applies.
        assert await _status(p, _token(OLD, expires_in=-60)) == (401, "invalid_token")
        fresh = await p.login()
        assert _signed_with(fresh, NEW)
        assert not _signed_with(fresh, OLD)


async def test_without_the_previous_key_its_tokens_are_refused(settings_factory: Any) -> None:
    async with running_platform(settings_factory(secret_key=NEW)) as p:
        assert await _status(p, _token(OLD)) == (401, "invalid_token")
        assert await _status(p, _token(NEW)) == (200, "")


async def test_the_first_step_of_a_rotation_accepts_the_next_key(settings_factory: Any) -> None:
    """Step 1 of the runbook: the next key verify-only everywhere, so that processes that
    still sign with the old key accept the tokens of those that already have the new one."""
    async with running_platform(settings_factory(secret_key=OLD, secret_key_previous=NEW)) as p:
        assert await _status(p, _token(NEW)) == (200, "")
        assert _signed_with(await p.login(), OLD)


async def test_a_browser_session_survives_the_rotation(settings_factory: Any) -> None:
    async with running_platform(settings_factory()) as before:
        signed_in = await before.client.post(
            "/api/v1/auth/session", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        cookie = {"Cookie": f"{SESSION_COOKIE}={signed_in.cookies[SESSION_COOKIE]}"}
        old_csrf = signed_in.json()["csrf_token"]
    async with running_platform(settings_factory(secret_key=NEW, secret_key_previous=OLD)) as p:
        read = await p.client.get("/api/v1/auth/session", headers=cookie)
        assert read.status_code == 200, read.text
        assert read.json()["username"] == "admin"
        new_csrf = read.json()["csrf_token"]
        assert new_csrf != old_csrf  # derived under the new key from now on
        for n, csrf in enumerate((old_csrf, new_csrf)):
            write = await p.client.post(
                "/api/v1/models",
                json={"name": f"rotated-{n}"},
                headers={**cookie, "X-CSRF-Token": csrf},
            )
            assert write.status_code == 201, write.text
        jti = jwt.decode(
            signed_in.cookies[SESSION_COOKIE], OLD, algorithms=[ALGORITHM], issuer=ISSUER
        )["jti"]
        forged = hmac.new(OTHER.encode(), f"csrf:{jti}".encode(), hashlib.sha256).hexdigest()
        refused = await p.client.post(
            "/api/v1/models", json={"name": "forged"}, headers={**cookie, "X-CSRF-Token": forged}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
    async with running_platform(settings_factory(secret_key=NEW)) as later:
        gone = await later.client.get("/api/v1/auth/session", headers=cookie)
        assert gone.status_code == 401


def test_a_rotation_across_live_api_processes(settings_factory: Any, tmp_path: Path) -> None:
    """Real ``mlops api`` processes on one database: the old configuration, the rotated
    one (new key, old key verify-only) and the final one (new key alone)."""
    settings = settings_factory()
    admin = {"username": "admin", "password": ADMIN_PASSWORD}
    with api_process(settings, tmp_path / "old.log", MLOPS_SECRET_KEY=OLD) as old:
        token = httpx.post(f"{old}/api/v1/auth/login", json=admin).json()["access_token"]
        session = httpx.post(f"{old}/api/v1/auth/session", json=admin)
        assert session.status_code == 200, session.text
        cookie = {"Cookie": f"{SESSION_COOKIE}={session.cookies[SESSION_COOKIE]}"}
        csrf = session.json()["csrf_token"]
        with (
            api_process(
                settings,
                tmp_path / "rotated.log",
                MLOPS_SECRET_KEY=NEW,
                MLOPS_SECRET_KEY_PREVIOUS=OLD,
            ) as rotated,
            api_process(settings, tmp_path / "final.log", MLOPS_SECRET_KEY=NEW) as final,
        ):
            assert httpx.get(f"{rotated}/api/v1/users/me", headers=bearer(token)).status_code == 200
            write = httpx.post(
                f"{rotated}/api/v1/models",
                json={"name": "live-rotated"},
                headers={**cookie, "X-CSRF-Token": csrf},
            )
            assert write.status_code == 201, write.text
            fresh = httpx.post(f"{rotated}/api/v1/auth/login", json=admin).json()["access_token"]
            assert _signed_with(fresh, NEW)
            assert httpx.get(f"{final}/api/v1/users/me", headers=bearer(fresh)).status_code == 200
            refused = httpx.get(f"{final}/api/v1/users/me", headers=bearer(token))
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_token"
            assert httpx.get(f"{final}/api/v1/auth/session", headers=cookie).status_code == 401
