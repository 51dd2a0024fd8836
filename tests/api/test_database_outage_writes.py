"""Writes while the database cannot answer: 503 with Retry-After, then success.

A throwaway PostgreSQL cluster (``tests/throwaway.py``) is stopped and started; the
shared Redis caches credentials, so predictions keep answering meanwhile. A full
connection pool is the other outage, tested on both backends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text

from mlops.config import load_settings
from mlops.db.schema import upgrade_database
from tests.conftest import ADMIN_PASSWORD, REDIS_URL, SECRET_KEY, bearer, start_platform
from tests.registry.conftest import model_files
from tests.registry.helpers import create_model, stored_keys, upload
from tests.throwaway import ThrowawayPostgres, throwaway_postgres

__all__ = ["model_files", "throwaway_postgres"]  # fixtures
ROW = [[0.1, -0.2, 0.3, 0.4, -0.5]]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "database is unreachable" in error["message"]


@pytest.fixture
def redis_namespace(redis_client: redis.Redis) -> Iterator[str]:
    namespace = f"test-{uuid.uuid4().hex[:12]}:"
    yield namespace
    keys = list(redis_client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        redis_client.delete(*keys)


async def test_writes_answer_503_while_postgres_is_down_and_succeed_after(
    throwaway_postgres: ThrowawayPostgres,
    redis_namespace: str,
    model_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    settings = load_settings(
        database_url=throwaway_postgres.url,
        redis_url=REDIS_URL,
        redis_namespace=redis_namespace,
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
        admin_password=ADMIN_PASSWORD,
    )
    await asyncio.to_thread(upgrade_database, settings)
    async for platform in start_platform(settings):
        client = platform.client
        admin = await platform.login()
        auth = bearer(admin)
        assert (await create_model(platform, admin, "m")).status_code == 201
        assert (await upload(platform, admin, "m", model_files["onnx"])).status_code == 201
        moved = await client.put(
            "/api/v1/models/m/aliases/production", json={"version": 1}, headers=auth
        )
        assert moved.status_code == 200
        await platform.app.state.dataplane.manager.refresh()
        assert (
            await client.post("/api/v1/models/m/predict", json={"data": ROW}, headers=auth)
        ).status_code == 200
        objects = await stored_keys(platform)

        await asyncio.to_thread(throwaway_postgres.stop)

        predicted = await client.post("/api/v1/models/m/predict", json={"data": ROW}, headers=auth)
        assert predicted.status_code == 200, predicted.text
        assert_unavailable(await create_model(platform, admin, "n"))
        assert_unavailable(await upload(platform, admin, "m", model_files["skops"]))
        assert_unavailable(
            await client.put("/api/v1/models/m/aliases/staging", json={"version": 1}, headers=auth)
        )
        assert_unavailable(
            await client.post(
                "/api/v1/users",
                json={"username": "ana", "password": "a-long-passphrase-42", "role": "viewer"},
                headers=auth,
            )
        )
        assert_unavailable(await client.get("/api/v1/models", headers=auth))
        # The refused upload left no stored object behind.
        assert await stored_keys(platform) == objects

        await asyncio.to_thread(throwaway_postgres.start)

        assert (await create_model(platform, admin, "n")).status_code == 201
        assert (await upload(platform, admin, "m", model_files["skops"])).status_code == 201
        staged = await client.put(
            "/api/v1/models/m/aliases/staging", json={"version": 2}, headers=auth
        )
        assert staged.status_code == 200, staged.text


async def test_a_full_connection_pool_answers_503_then_writes_succeed(
    settings_factory: Any,
) -> None:
    settings = settings_factory(
        database_pool_size=1, database_max_overflow=0, database_pool_timeout=0.5
    )
    async for platform in start_platform(settings):
        admin = await platform.login()
        assert (
            await platform.client.get("/api/v1/users/me", headers=bearer(admin))
        ).status_code == 200
        async with platform.ctx.engine.connect() as held:
            await held.execute(text("SELECT 1"))  # the pool's only connection
            assert_unavailable(await create_model(platform, admin, "busy"))
        assert (await create_model(platform, admin, "busy")).status_code == 201
