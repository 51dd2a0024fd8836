"""The platform on PostgreSQL through a real Redis outage (a throwaway redis-server).

Redis is killed and restarted on the same port with its append-only file, so what it
cached before the outage is still there afterwards, as with a Redis that persists or
was only unreachable: a stale "not revoked" would show.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops.auth.models import RevokedToken
from mlops.config import load_settings
from tests.conftest import (
    ADMIN_PASSWORD,
    SECRET_KEY,
    Platform,
    _truncate_postgres,
    bearer,
    start_platform,
)
from tests.registry.conftest import model_files
from tests.registry.helpers import create_model, upload
from tests.throwaway import ThrowawayRedis, throwaway_redis

__all__ = ["model_files", "throwaway_redis"]  # fixtures
DEADLINE_S = 30.0
ROW = [[0.1, -0.2, 0.3, 0.4, -0.5]]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.1)


class Calls:
    """The platform's client, remembering every status it answered."""

    def __init__(self, platform: Platform) -> None:
        self.client = platform.client
        self.statuses: list[int] = []

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        self.statuses.append(response.status_code)
        return response

    async def predict(self, credential: str) -> httpx.Response:
        return await self.send(
            "POST", "/api/v1/models/m/predict", json={"data": ROW}, headers=bearer(credential)
        )

    async def login(self, username: str, password: str) -> httpx.Response:
        return await self.send(
            "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )

    async def token(self, username: str, password: str) -> str:
        response = await self.login(username, password)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def move_alias(self, admin: str, version: int) -> None:
        response = await self.send(
            "PUT",
            "/api/v1/models/m/aliases/production",
            json={"version": version},
            headers=bearer(admin),
        )
        assert response.status_code == 200, response.text

    async def serves(self, credential: str, version: int) -> bool:
        response = await self.predict(credential)
        return response.status_code == 200 and response.json()["version"] == version

    async def redis_up(self) -> bool:
        text = (await self.client.get("/metrics")).text
        return "\nmlops_redis_up 1.0" in text


async def _release(platform: Platform, admin: str, files: dict[str, Path]) -> None:
    assert (await create_model(platform, admin, "m")).status_code == 201
    for name in ("onnx", "skops"):  # versions 1 and 2
        response = await upload(platform, admin, "m", files[name])
        assert response.status_code == 201, response.text


async def _revoke_elsewhere(platform: Platform, token: str) -> None:
    """A logout by another API process that died before it could tell Redis."""
    claims = platform.ctx.signer.decode(token)
    async with platform.ctx.sessions() as session:
        session.add(
            RevokedToken(
                jti=claims.jti,
                user_id=claims.user_id,
                expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
            )
        )
        await session.commit()


async def test_redis_outage_predictions_answer_logins_503_revocations_hold_after(
    throwaway_redis: ThrowawayRedis,
    postgres_url: str,
    model_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    _truncate_postgres(postgres_url)
    settings = load_settings(
        database_url=postgres_url,
        redis_url=throwaway_redis.url,
        data_dir=tmp_path / "data",
        secret_key=SECRET_KEY,
        admin_password=ADMIN_PASSWORD,
        # Far beyond the test: alias moves must arrive through Redis pub/sub, not polling.
        catalog_poll_seconds=600,
        redis_outage_grace_seconds=600,
    )
    async for platform in start_platform(settings):
        calls = Calls(platform)
        admin = await calls.token("admin", ADMIN_PASSWORD)
        await _release(platform, admin, model_files)
        await calls.move_alias(admin, 1)
        vera = await platform.create_user(admin, "vera", "viewer")
        dora = await platform.create_user(admin, "dora", "viewer")
        out_before, out_during, out_elsewhere, kept = [
            await calls.token("vera", vera) for _ in range(4)
        ]
        disabled = await calls.token("dora", dora)
        key = await calls.send(
            "POST", "/api/v1/api-keys", json={"name": "ci", "role": "viewer"}, headers=bearer(kept)
        )
        assert key.status_code == 201, key.text
        api_key: str = key.json()["key"]

        await eventually(partial(calls.serves, kept, 1), "version 1 in serving")
        for credential in (out_before, out_during, out_elsewhere, disabled, api_key):
            assert (await calls.predict(credential)).status_code == 200
        logout = await calls.send("POST", "/api/v1/auth/logout", headers=bearer(out_before))
        assert logout.status_code == 204
        assert (await calls.predict(out_before)).status_code == 401

        throwaway_redis.kill()

        # Predictions answer on the state known when Redis went away.
        for credential in (kept, out_during, out_elsewhere, disabled, api_key):
            response = await calls.predict(credential)
            assert response.status_code == 200, response.text
        assert (await calls.predict(out_before)).status_code == 401
        me = await calls.send("GET", "/api/v1/users/me", headers=bearer(kept))
        assert me.status_code == 200
        # A login needs Redis (failed-login counting): 503 with Retry-After, not 500.
        refused = await calls.login("vera", vera)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["error"]["code"] == "redis_unavailable"
        metrics = (await platform.client.get("/metrics")).text
        assert "\nmlops_redis_up 0.0" in metrics
        assert "\nmlops_redis_errors_total " in metrics
        # An outage is no wrong password: the failed-login counter does not move.
        assert 'mlops_login_failures_total{reason="invalid_credentials"}' not in metrics

        # Revocations during the outage go to the database and hold in this process now.
        logout = await calls.send("POST", "/api/v1/auth/logout", headers=bearer(out_during))
        assert logout.status_code == 204, logout.text
        assert (await calls.predict(out_during)).status_code == 401
        disable = await calls.send(
            "PATCH", "/api/v1/users/dora", json={"disabled": True}, headers=bearer(admin)
        )
        assert disable.status_code == 200, disable.text
        assert (await calls.predict(disabled)).status_code == 401
        await _revoke_elsewhere(platform, out_elsewhere)
        # A registry write commits; its event waits for Redis.
        await calls.move_alias(admin, 2)

        throwaway_redis.start()
        await eventually(calls.redis_up, "Redis seen again")

        # Nothing revoked before or during the outage works, though Redis kept its cache.
        for credential in (out_before, out_during, out_elsewhere, disabled):
            response = await calls.predict(credential)
            assert response.status_code == 401, response.text
        assert (await calls.predict(kept)).status_code == 200
        assert (await calls.predict(api_key)).status_code == 200
        assert (await calls.login("vera", vera)).status_code == 200
        # The move made during the outage, and one made after, reach serving with no restart.
        await eventually(partial(calls.serves, kept, 2), "the alias move made during the outage")
        await calls.move_alias(admin, 1)
        await eventually(partial(calls.serves, kept, 1), "an alias move after the outage")
        assert 500 not in calls.statuses
