"""A version that failed to load is tried again after its pause, and serves once its
artifact is back; until then it answers 503 without another fetch. The pause is timed
by the manager's clock, which the test moves instead of waiting."""

from __future__ import annotations

from pathlib import Path

from mlops.serving.manager import LOAD_RETRY_SECONDS
from tests.conftest import Platform, bearer
from tests.serving.conftest import dataplane, release

ROW = {"data": [[0.5, -1, 2, 0, 1]]}


async def test_a_failed_load_recovers_after_its_pause(
    serving: Platform, admin_token: str, model_files: dict[str, Path], tmp_path: Path
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["skops"]])
    store = serving.ctx.store
    key = next(k for k in await store.list_keys("") if k.endswith(".skops"))
    saved = tmp_path / "artifact.skops"
    await store.get_file(key, saved)
    await store.delete(key)
    manager = dataplane(serving).manager
    now = 1_000.0
    manager.clock = lambda: now

    async def predict() -> tuple[int, str]:
        response = await serving.client.post(
            "/api/v1/models/m/predict?version=2", json=ROW, headers=bearer(admin_token)
        )
        body = response.json()
        return response.status_code, body["error"]["code"] if "error" in body else ""

    assert await predict() == (503, "model_load_failed")
    await store.put_file(key, saved)  # the storage outage is over
    now += LOAD_RETRY_SECONDS - 1
    assert await predict() == (503, "model_load_failed")  # still within the pause
    now += 1
    assert await predict() == (200, "")
    assert ("m", 2) in manager.loaded and ("m", 2) not in manager.failed
