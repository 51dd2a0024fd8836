"""Served artifacts are held to the sha256 recorded at upload: a stored object replaced
behind the registry's back (a shared bucket, the local file store), or a cached copy
changed on the model server's disk, is refused, logged and counted; predictions never
change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mlops.serving.manager import ModelManager
from tests.conftest import Platform, bearer, start_platform
from tests.registry.helpers import upload
from tests.serving.conftest import dataplane, refresh, release

ROWS = {"data": [[0.5, -1, 2, 0, 1], [-2, 1, 0.5, 1, -1], [1, 1, 1, 1, 1]]}


def _integrity_failures(platform: Platform, version: int, source: str) -> float:
    value = platform.app.state.registry.get_sample_value(
        "mlops_artifact_integrity_failures_total",
        {"model": "m", "version": str(version), "source": source},
    )
    return float(value or 0)


async def _predict(platform: Platform, token: str, query: str = "") -> Any:
    return await platform.client.post(
        f"/api/v1/models/m/predict{query}", json=ROWS, headers=bearer(token)
    )


def _manager(platform: Platform) -> ModelManager:
    return dataplane(platform).manager


async def test_a_replaced_stored_object_never_serves(
    serving: Platform,
    admin_token: str,
    model_files: dict[str, Path],
    same_model: Path,
    impostor: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    before = await _predict(serving, admin_token)
    assert before.status_code == 200
    # Version 2: the same model, so the answers must stay the same once it serves.
    assert (await upload(serving, admin_token, "m", same_model)).status_code == 201
    version = (
        await serving.client.get("/api/v1/models/m/versions/2", headers=bearer(admin_token))
    ).json()
    old_keys = set(await serving.ctx.store.list_keys(""))
    # Someone with write access to the store swaps the object under the registry's back.
    # (The model server hears of version 2 in the background: read the registry now.)
    await refresh(serving)
    spec = _manager(serving).snapshot.models["m"].versions[2]
    assert spec.sha256 == version["sha256"]
    await serving.ctx.store.put_file(spec.storage_key, impostor)
    assert set(await serving.ctx.store.list_keys("")) == old_keys
    moved = await serving.client.put(
        "/api/v1/models/m/aliases/production", json={"version": 2}, headers=bearer(admin_token)
    )
    assert moved.status_code == 200
    with caplog.at_level(logging.ERROR, logger="mlops.serving"):
        await refresh(serving)
    after = await _predict(serving, admin_token)
    assert after.status_code == 200
    assert after.headers["X-Model-Version"] == "1"  # the version that loaded keeps serving
    assert after.json()["predictions"] == before.json()["predictions"]
    explicit = await _predict(serving, admin_token, "?version=2")
    assert explicit.status_code == 503
    message = explicit.json()["error"]["message"]
    assert "does not match the sha256 recorded at upload" in message
    assert f"expected {spec.sha256}" in message
    status = (
        await serving.client.get("/api/v1/models/m/deployment", headers=bearer(admin_token))
    ).json()["status"]
    assert "sha256" in status["load_failures"]["2"]["reason"]
    assert _integrity_failures(serving, 2, "store") == 1
    refused = [r for r in caplog.records if "does not match its sha256" in r.getMessage()]
    assert len(refused) == 1
    logged = vars(refused[0])
    assert logged["expected_sha256"] == spec.sha256
    assert logged["actual_sha256"] not in (spec.sha256, None)
    # Neither the impostor's bytes nor a partial download stay in the cache.
    cache = _manager(serving).cache_dir
    first = _manager(serving).snapshot.models["m"].versions[1]
    assert [p.name for p in cache.iterdir() if p.is_file()] == [f"{first.sha256}.onnx"]


async def test_a_cached_file_changed_on_disk_is_fetched_again(
    registry_settings: Any,
    model_files: dict[str, Path],
    impostor: Path,
) -> None:
    settings = registry_settings()
    async for api in start_platform(settings):
        token = await api.login()
        await release(api, token, "m", [model_files["onnx"]])
        before = (await _predict(api, token)).json()["predictions"]
        spec = _manager(api).snapshot.models["m"].versions[1]
        cached = _manager(api).cache_dir / f"{spec.sha256}.onnx"
        assert cached.exists()
        cached.write_bytes(impostor.read_bytes())
        # A model server starting on this cache (a restart, or a second process).
        async for alone in start_platform(settings, components={"serving"}):
            answer = await _predict(alone, token)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == before
            assert _integrity_failures(alone, 1, "cache") == 1
            assert _integrity_failures(alone, 1, "store") == 0
            assert cached.read_bytes() == model_files["onnx"].read_bytes()
