"""Drift monitoring end to end: live traffic sampled by the model server, compared by a
worker with the version's reference data set."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.serving.sampling import DriftSampler, samples_prefix
from mlops.storage import LocalArtifactStore
from mlops.workers.jobs import drift
from tests.conftest import Platform, bearer
from tests.registry.helpers import create_model, upload
from tests.serving.conftest import dataplane, release
from tests.workers.helpers import (
    drain,
    encode,
    get_job,
    running_platform,
    upload_dataset,
    worker_of,
)


@pytest.fixture
async def sampled(job_settings: Any) -> Any:
    """A platform that samples every request."""
    settings = job_settings(drift_sample_rate=1.0, drift_samples_per_minute=1_000_000)
    async with running_platform(settings) as platform:
        yield platform


async def _traffic(platform: Platform, token: str, x: np.ndarray) -> None:
    for start in range(0, len(x), 250):
        response = await platform.client.post(
            "/api/v1/models/churn/predict",
            json={"data": x[start : start + 250].tolist()},
            headers=bearer(token),
        )
        assert response.status_code == 200, response.text
    sampler = dataplane(platform).sampler
    assert sampler is not None
    assert await sampler.flush() == len(x)


async def _report(platform: Platform, token: str) -> dict[str, Any]:
    headers = bearer(token)
    run = await platform.client.post("/api/v1/models/churn/drift/run", headers=headers)
    assert run.status_code == 202 and run.json()["type"] == "drift", run.text
    await drain(platform)
    assert (await get_job(platform, token, run.json()["id"]))["status"] == "succeeded"
    answer = await platform.client.get("/api/v1/models/churn/drift", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_shifted_feature_is_flagged_alone(
    sampled: Platform, model_files: dict[str, Path]
) -> None:
    platform = sampled
    token = await platform.login()
    await release(platform, token, "churn", [model_files["onnx"]])
    rng = np.random.default_rng(21)
    reference = rng.normal(0.0, 1.0, size=(5000, 5))
    uri = (
        await upload_dataset(platform, token, encode(None, reference, "parquet"), "ref.parquet")
    )["uri"]
    put = await platform.client.put(
        "/api/v1/models/churn/versions/1/reference", json={"uri": uri}, headers=bearer(token)
    )
    assert put.status_code == 200 and put.json()["uri"] == uri, put.text

    await _traffic(platform, token, rng.normal(0.0, 1.0, size=(2000, 5)))
    same = await _report(platform, token)
    latest = same["versions"][0]["latest"]
    assert latest["status"] == "ok" and latest["samples"] == 2000, latest
    assert all(f["psi"] < 0.1 and not f["drifted"] for f in latest["features"].values()), latest
    assert all(f["kind"] == "numeric" and f["ks"] < 0.1 for f in latest["features"].values())
    assert latest["prediction_psi"] < 0.1

    shifted = rng.normal(0.0, 1.0, size=(2000, 5))
    shifted[:, 2] += 2.0  # two standard deviations
    await _traffic(platform, token, shifted)
    moved = await _report(platform, token)
    latest = moved["versions"][0]["latest"]
    assert latest["status"] == "drift" and latest["samples"] == 2000, latest
    flagged = {name for name, f in latest["features"].items() if f["psi"] > 0.2}
    assert flagged == {"f2"}, latest["features"]
    assert latest["features"]["f2"]["drifted"] and latest["features"]["f2"]["ks"] > 0.5
    assert all(f["psi"] < 0.1 for n, f in latest["features"].items() if n != "f2")
    assert moved["total"] == 2 and [r["status"] for r in moved["history"]] == ["drift", "ok"]
    metrics = (await platform.client.get("/metrics")).text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("mlops_feature_drift_psi{") and 'feature="f2"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) > 0.2
    assert "mlops_prediction_drift_psi{" in metrics


async def test_drift_runs_on_schedule_once_something_is_monitored(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    async with worker_of(platform) as worker:
        queue = worker.queue
        assert await queue.enqueue_due(drift.TYPE, 0.0, drift.TYPE) is None  # first sight
        assert await queue.enqueue_due(drift.TYPE, 0.0, drift.TYPE) is None  # nothing monitored
        data = encode(None, np.ones((10, 5)), "csv")
        uri = (await upload_dataset(platform, admin_token, data, "ref.csv"))["uri"]
        headers = bearer(admin_token)
        await platform.client.put(
            "/api/v1/models/churn/versions/1/reference", json={"uri": uri}, headers=headers
        )
        job_id = await queue.enqueue_due(drift.TYPE, 3600.0, drift.TYPE)
        assert job_id is not None
        assert await queue.enqueue_due(drift.TYPE, 3600.0, drift.TYPE) is None  # not due
        assert await worker.worker.run_once()
    job = await get_job(platform, admin_token, job_id)
    assert job["status"] == "succeeded" and job["created_by"] == "system"
    report = (await platform.client.get("/api/v1/models/churn/drift", headers=headers)).json()
    assert report["versions"][0]["latest"]["status"] == "insufficient_data"


async def test_reference_refusals(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    headers = bearer(admin_token)
    path = "/api/v1/models/churn/versions/1/reference"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": {"uri": "file:///etc/passwd"}}, 403, "location_forbidden"),
        ({"json": {"uri": "datasets/none/ref.csv"}}, 404, "input_not_found"),
        ({"json": {"uri": "datasets/none/ref"}}, 422, "unknown_format"),
        ({"json": {"path": "x"}}, 400, "invalid_reference"),
        (
            {"content": b"uri=x", "headers": {"content-type": "text/plain"}},
            400,
            "invalid_reference",
        ),
    ]
    for kwargs, status, code in cases:
        kwargs.setdefault("headers", {})
        kwargs["headers"].update(headers)
        response = await platform.client.put(path, **kwargs)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), kwargs
    missing = await platform.client.put(
        "/api/v1/models/churn/versions/9/reference", json={"uri": "x.csv"}, headers=headers
    )
    assert missing.status_code == 404
    uploaded = await platform.client.put(
        path, files={"file": ("Train.csv", encode(None, np.ones((3, 5)), "csv"))}, headers=headers
    )
    assert uploaded.status_code == 200 and uploaded.json()["uri"].endswith("/train.csv")
    password = await platform.create_user(admin_token, "val", "viewer")
    viewer = bearer(await platform.login("val", password))
    refused = await platform.client.put(path, json={"uri": uploaded.json()["uri"]}, headers=viewer)
    assert refused.status_code == 403
    run = await platform.client.post("/api/v1/models/churn/drift/run", headers=viewer)
    assert run.status_code == 403
    read = await platform.client.get("/api/v1/models/churn/drift", headers=viewer)
    assert read.status_code == 200 and read.json()["versions"][0]["latest"] is None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_sampler_takes_its_share_and_caps_rows_per_minute(tmp_path: Path) -> None:
    from mlops.modelformats import Signature
    from mlops.serving.catalog import VersionSpec

    signature = Signature(
        n_features=2,
        feature_names=None,
        input_dtype="float32",
        output_kind="class_labels",
        classes=[0, 1],
        has_probabilities=False,
    )
    spec = VersionSpec("m", 3, "onnx", "m.onnx", "k", "s" * 64, signature, {})
    store = LocalArtifactStore(tmp_path / "store")
    clock = _Clock()
    sampler = DriftSampler(store, rate=1.0, per_minute=250, clock=clock)
    x = np.arange(200, dtype=np.float64).reshape(100, 2)
    for _ in range(5):
        sampler.offer(spec, x, np.zeros(100))
    assert await sampler.flush() == 250  # the minute's allowance
    clock.now += 60
    sampler.offer(spec, x, np.zeros(100))
    assert await sampler.flush() == 100
    assert len(await store.list_keys(samples_prefix("m", 3))) == 2
    # At 5 %, about one request in twenty is sampled, at random (a seeded draw here).
    share = DriftSampler(
        store, rate=0.05, per_minute=10**9, clock=clock, draw=random.Random(7).random
    )
    one = np.ones((1, 2))
    for _ in range(20_000):
        share.offer(spec, one, np.zeros(1))
    assert 850 <= await share.flush() <= 1150
    assert await DriftSampler(store, rate=0.0, per_minute=10).flush() == 0


async def test_a_reference_given_with_the_upload(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    headers = bearer(admin_token)
    assert (await create_model(platform, admin_token, "churn")).status_code == 201
    data = encode(None, np.ones((4, 5)), "csv")
    uri = (await upload_dataset(platform, admin_token, data, "ref.csv"))["uri"]
    by_uri = await upload(
        platform, admin_token, "churn", model_files["onnx"], {"reference_uri": uri}
    )
    assert by_uri.status_code == 201, by_uri.text
    onnx = model_files["onnx"].read_bytes()
    with_file = await platform.client.post(
        "/api/v1/models/churn/versions",
        files={
            "file": ("m.onnx", onnx),
            "reference": ("Train.parquet", encode(None, np.ones((4, 5)), "parquet")),
        },
        headers=headers,
    )
    assert with_file.status_code == 201, with_file.text
    before = await platform.ctx.store.list_keys("datasets/")
    refused = [
        (
            await upload(
                platform,
                admin_token,
                "churn",
                model_files["onnx"],
                {"reference_uri": "datasets/x/none.csv"},
            ),
            404,
        ),
        (
            await upload(
                platform,
                admin_token,
                "churn",
                model_files["onnx"],
                {"reference_uri": "file:///etc/passwd"},
            ),
            403,
        ),
        (
            await platform.client.post(
                "/api/v1/models/churn/versions",
                files={"file": ("m.onnx", onnx), "reference": ("notes.txt", b"x")},
                headers=headers,
            ),
            422,
        ),
        (
            await platform.client.post(
                "/api/v1/models/churn/versions",
                files={"file": ("m.onnx", onnx), "reference": ("r.csv", data)},
                data={"metadata": json.dumps({"reference_uri": uri})},
                headers=headers,
            ),
            422,
        ),
    ]
    assert [r.status_code for r, _ in refused] == [s for _, s in refused], [
        r.text for r, _ in refused
    ]
    assert await platform.ctx.store.list_keys("datasets/") == before  # nothing left behind
    versions = (await platform.client.get("/api/v1/models/churn/versions", headers=headers)).json()
    assert versions["total"] == 2
    drift_state = (await platform.client.get("/api/v1/models/churn/drift", headers=headers)).json()
    references = {v["version"]: v["reference"] for v in drift_state["versions"]}
    assert references[1]["uri"] == uri and references[1]["format"] == "csv"
    assert references[2]["uri"].endswith("/train.parquet") and references[2]["format"] == "parquet"
