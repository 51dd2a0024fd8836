"""Without Redis, a model server still follows the registry: its subscription to
registry events fails, so every poll re-reads the catalog from the database, and an
alias move made meanwhile reaches it without a restart."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

from tests.conftest import Platform, postgres_settings, running_platform
from tests.registry.conftest import model_files
from tests.registry.helpers import create_model, upload
from tests.throwaway import ThrowawayRedis, throwaway_redis

__all__ = ["model_files", "throwaway_redis"]  # fixtures
ROW = {"data": [[0.5, -1, 2, 0, 1]]}


async def _served(platform: Platform, token: str) -> str:
    response = await platform.client.post(
        "/api/v1/models/m/predict", json=ROW, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.headers["X-Model-Version"]


async def test_an_alias_move_reaches_a_model_server_by_polling_while_redis_is_down(
    throwaway_redis: ThrowawayRedis,
    postgres_url: str,
    tmp_path: Path,
    model_files: dict[str, Path],
) -> None:
    settings = postgres_settings(
        postgres_url,
        throwaway_redis.url,
        tmp_path / "data",
        "events-fallback:",
        catalog_poll_seconds=0.2,
    )
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(running_platform(settings, {"api"}))
        model_server = await stack.enter_async_context(running_platform(settings, {"serving"}))
        token = await api.login()
        auth = {"Authorization": f"Bearer {token}"}
        assert (await create_model(api, token, "m")).status_code == 201
        for kind in ("onnx", "skops"):
            assert (await upload(api, token, "m", model_files[kind])).status_code == 201
        first = await api.client.put(
            "/api/v1/models/m/aliases/production", json={"version": 1}, headers=auth
        )
        assert first.status_code == 200
        deadline = time.monotonic() + 60
        while (
            await model_server.client.post("/api/v1/models/m/predict", json=ROW, headers=auth)
        ).status_code != 200:
            assert time.monotonic() < deadline, "the release never reached the model server"
            await asyncio.sleep(0.1)
        assert await _served(model_server, token) == "1"

        throwaway_redis.kill()
        moved = await api.client.put(
            "/api/v1/models/m/aliases/production",
            json={"version": 2},
            headers=auth,
        )
        # The move is in the database; its event could not be published.
        assert moved.status_code == 200, moved.text
        deadline = time.monotonic() + 60
        while await _served(model_server, token) != "2":
            assert time.monotonic() < deadline, "the move never reached the model server"
            await asyncio.sleep(0.1)
