"""Archiving a model takes it out of serving as fast as an alias move: in the process
that archived it (``mlops up``) and in a model server apart (``mlops model-server``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Platform, bearer, start_platform
from tests.registry.helpers import create_model, upload
from tests.serving.conftest import release

ROW = {"data": [[0.5, -1, 2, 0, 1]]}
V2_ROW = {
    "inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": ROW["data"][0]}]
}
# The documented bound for an alias move; archiving is a registry change like it.
ARRIVES_WITHIN = 2.0


async def _answers(platform: Platform, token: str) -> set[int]:
    calls = [
        platform.client.post("/api/v1/models/m/predict", json=ROW, headers=bearer(token)),
        platform.client.post("/api/v1/models/m/predict?version=1", json=ROW, headers=bearer(token)),
        platform.client.post("/v2/models/m/versions/1/infer", json=V2_ROW, headers=bearer(token)),
    ]
    return {response.status_code for response in await asyncio.gather(*calls)}


async def _wait_until_gone(server: Platform, token: str) -> None:
    deadline = time.monotonic() + ARRIVES_WITHIN
    while (statuses := await _answers(server, token)) != {404}:
        assert time.monotonic() < deadline, f"still serving after archive: {statuses}"
        await asyncio.sleep(0.05)


async def _archive(api: Platform, token: str) -> None:
    archived = await api.client.delete("/api/v1/models/m?force=true", headers=bearer(token))
    assert archived.status_code == 204, archived.text


async def test_archive_stops_serving_in_the_same_process(
    registry_settings: Any, model_files: dict[str, Path]
) -> None:
    # The default poll (15 s, a full re-read every 20 quiet polls): only the
    # notification can make the deadline.
    async for platform in start_platform(registry_settings()):
        token = await platform.login()
        await release(platform, token, "m", [model_files["onnx"]])
        assert await _answers(platform, token) == {200}
        await _archive(platform, token)
        await _wait_until_gone(platform, token)
        loaded = platform.app.state.dataplane.manager.loaded
        assert not [key for key in loaded if key[0] == "m"]


async def test_archive_stops_a_model_server_apart(
    registry_settings: Any, model_files: dict[str, Path], backend: str
) -> None:
    if backend == "embedded":
        pytest.skip("a model server apart learns of changes through Redis (ADR 0005)")
    settings = registry_settings()
    async for api in start_platform(settings, components={"api"}):
        token = await api.login()
        assert (await create_model(api, token, "m")).status_code == 201
        assert (await upload(api, token, "m", model_files["onnx"])).status_code == 201
        moved = await api.client.put(
            "/api/v1/models/m/aliases/production", json={"version": 1}, headers=bearer(token)
        )
        assert moved.status_code == 200
        async for alone in start_platform(settings, components={"serving"}):
            assert await _answers(alone, token) == {200}
            await _archive(api, token)
            await _wait_until_gone(alone, token)
