"""The drift gauges come from the stored reports: a worker that did not compute a
report shows the same values as the one that did, and archived versions drop out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mlops.workers.metrics import JobMetrics
from mlops.workers.process import WorkerProcess
from tests.conftest import Platform, bearer
from tests.serving.conftest import dataplane, release
from tests.workers.helpers import encode, get_job, running_platform, upload_dataset

FEATURES = [f"f{i}" for i in range(5)]


@pytest.fixture
async def sampled(job_settings: Any) -> AsyncIterator[Platform]:
    settings = job_settings(drift_sample_rate=1.0, drift_samples_per_minute=1_000_000)
    async with running_platform(settings) as platform:
        yield platform


def _worker(platform: Platform) -> tuple[WorkerProcess, CollectorRegistry]:
    """A worker with metrics of its own, as in a separate process."""
    registry = CollectorRegistry()
    return WorkerProcess(platform.settings, platform.ctx.store, JobMetrics(registry)), registry


def _gauges(registry: CollectorRegistry, version: str = "1") -> dict[str, float | None]:
    values = {
        name: registry.get_sample_value(
            "mlops_feature_drift_psi", {"model": "churn", "version": version, "feature": name}
        )
        for name in FEATURES
    }
    values["prediction"] = registry.get_sample_value(
        "mlops_prediction_drift_psi", {"model": "churn", "version": version}
    )
    return values


async def test_a_report_computed_by_one_worker_shows_on_another(
    sampled: Platform, model_files: dict[str, Path]
) -> None:
    platform = sampled
    token = await platform.login()
    headers = bearer(token)
    await release(platform, token, "churn", [model_files["onnx"]])
    rng = np.random.default_rng(8)
    reference = encode(None, rng.normal(0.0, 1.0, size=(2000, 5)), "parquet")
    uri = (await upload_dataset(platform, token, reference, "ref.parquet"))["uri"]
    put = await platform.client.put(
        "/api/v1/models/churn/versions/1/reference", json={"uri": uri}, headers=headers
    )
    assert put.status_code == 200, put.text
    live = rng.normal(0.0, 1.0, size=(500, 5))
    live[:, 2] += 2.0  # f2 shifted by two standard deviations
    answer = await platform.client.post(
        "/api/v1/models/churn/predict", json={"data": live.tolist()}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    sampler = dataplane(platform).sampler
    assert sampler is not None and await sampler.flush() == 500

    computing, computing_metrics = _worker(platform)
    other, other_metrics = _worker(platform)
    try:
        await other.worker.refresh_drift_gauges()
        assert _gauges(other_metrics) == dict.fromkeys([*FEATURES, "prediction"])  # no report

        run = await platform.client.post("/api/v1/models/churn/drift/run", headers=headers)
        assert run.status_code == 202, run.text
        assert await computing.worker.run_once()
        assert (await get_job(platform, token, run.json()["id"]))["status"] == "succeeded"
        stored = (await platform.client.get("/api/v1/models/churn/drift", headers=headers)).json()
        latest = stored["versions"][0]["latest"]
        assert latest["status"] == "drift", latest
        expected = {name: latest["features"][name]["psi"] for name in FEATURES}
        expected["prediction"] = latest["prediction_psi"]
        assert expected["f2"] > 0.2

        # The computing worker exports the stored report; the other, once it refreshes.
        assert _gauges(computing_metrics) == expected
        assert _gauges(other_metrics) == dict.fromkeys([*FEATURES, "prediction"])
        await other.worker.refresh_drift_gauges()
        assert _gauges(other_metrics) == expected

        # An archived model's versions drop out of the gauges at the next refresh.
        archived = await platform.client.delete(
            "/api/v1/models/churn", params={"force": "true"}, headers=headers
        )
        assert archived.status_code == 204, archived.text
        await other.worker.refresh_drift_gauges()
        assert _gauges(other_metrics) == dict.fromkeys([*FEATURES, "prediction"])
    finally:
        await computing.stop()
        await other.stop()
