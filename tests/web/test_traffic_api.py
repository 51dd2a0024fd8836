"""``GET /api/v1/models/{name}/traffic`` from the in-process sampler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mlops.serving.metrics import ServingMetrics
from mlops.traffic.quantile import bucket_quantile
from mlops.traffic.sampler import TrafficSampler
from tests.conftest import Platform, bearer, start_platform
from tests.registry.helpers import create_model, upload
from tests.serving.conftest import refresh

INF = float("inf")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def platform(registry_settings: Any) -> AsyncIterator[Platform]:
    async for running in start_platform(registry_settings()):
        yield running


def test_bucket_quantile_interpolates_like_prometheus() -> None:
    # 100 observations: 50 up to 0.1 s, 40 more up to 0.2 s, 10 more up to 0.4 s.
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.4, 100.0), (INF, 100.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.1)
    assert bucket_quantile(0.95, buckets) == pytest.approx(0.3)  # halfway into (0.2, 0.4]
    assert bucket_quantile(0.95, [(0.1, 0.0), (INF, 0.0)]) is None
    # A rank in the +Inf bucket answers the highest finite bound.
    assert bucket_quantile(0.99, [(0.1, 1.0), (INF, 10.0)]) == pytest.approx(0.1)


async def test_traffic_per_version_with_roles(
    platform: Platform, model_files: dict[str, Path]
) -> None:
    token = await platform.login()
    assert (await create_model(platform, token, "churn")).status_code == 201
    for _ in range(2):
        assert (await upload(platform, token, "churn", model_files["onnx"])).status_code == 201
    moved = await platform.client.put(
        "/api/v1/models/churn/aliases/production", json={"version": 1}, headers=bearer(token)
    )
    assert moved.status_code == 200
    policy = {"canary": {"version": 2, "percent": 50}, "shadow": None}
    deployed = await platform.client.put(
        "/api/v1/models/churn/deployment", json=policy, headers=bearer(token)
    )
    assert deployed.status_code == 200, deployed.text
    await refresh(platform)
    clock = FakeClock()
    sampler = TrafficSampler(platform.app.state.registry, interval=10, clock=clock)
    platform.app.state.traffic_sampler = sampler
    sampler.run_once()
    sent = 40
    for i in range(sent):
        answer = await platform.client.post(
            "/api/v1/models/churn/predict",
            json={"data": [[0.1, 0.2, 0.3, 0.4, 0.5]]},
            headers={**bearer(token), "X-Routing-Key": f"user-{i}"},
        )
        assert answer.status_code == 200, answer.text
    clock.now += 10
    sampler.run_once()

    traffic = await platform.client.get("/api/v1/models/churn/traffic", headers=bearer(token))
    assert traffic.status_code == 200, traffic.text
    body = traffic.json()
    assert body["source"] == "in-process"
    roles = {s["version"]: s["role"] for s in body["series"]}
    assert roles == {1: "primary", 2: "canary"}
    points = {s["version"]: s["points"] for s in body["series"]}
    # One interval of 10 s: every request is counted once, in its version's line.
    assert sum(p[0]["rps"] * 10 for p in points.values()) == pytest.approx(sent)
    for version_points in points.values():
        assert len(version_points) == 1
        assert version_points[0]["rps"] > 0
        assert version_points[0]["p95_ms"] > 0
        assert version_points[0]["error_rate"] == 0
        assert version_points[0]["t"] == clock.now


def test_sampler_rates_errors_and_window() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry).for_version("m", 3)
    clock = FakeClock()
    sampler = TrafficSampler(registry, interval=60, window=900, clock=clock)
    sampler.run_once()
    for _ in range(9):
        metrics.ok.inc()
        metrics.latency.observe(0.004)
    metrics.error.inc()
    metrics.latency.observe(0.004)
    clock.now += 60
    sampler.run_once()
    (point,) = sampler.series("m")[3]
    assert point.rps == pytest.approx(10 / 60)
    assert point.error_rate == pytest.approx(0.1)
    assert point.p95_ms is not None and 3 < point.p95_ms <= 4  # in the (3, 4] ms bucket
    assert sampler.series("other") == {}
    # An idle interval is a point at zero with no latency, then it all leaves the window.
    clock.now += 60
    sampler.run_once()
    idle = sampler.series("m")[3][-1]
    assert (idle.rps, idle.p95_ms, idle.error_rate) == (0, None, None)
    clock.now += 2000
    assert sampler.series("m") == {}


async def test_api_alone_without_prometheus_says_what_to_set(settings_factory: Any) -> None:
    async for platform in start_platform(settings_factory(), components={"api"}):
        token = await platform.login()
        await create_model(platform, token, "churn")
        answer = await platform.client.get("/api/v1/models/churn/traffic", headers=bearer(token))
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "traffic_unavailable"
        assert "MLOPS_PROMETHEUS_URL" in answer.json()["error"]["message"]


async def test_traffic_of_an_unknown_model_is_404(platform: Platform) -> None:
    token = await platform.login()
    answer = await platform.client.get("/api/v1/models/nope/traffic", headers=bearer(token))
    assert answer.status_code == 404
