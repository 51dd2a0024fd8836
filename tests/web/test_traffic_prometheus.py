"""The live charts from a real Prometheus scraping ``mlops up`` (``MLOPS_PROMETHEUS_URL``):
the production shape, where several model-server replicas each count their own."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.live_server import free_port, running_up
from tests.conftest import bearer, start_platform
from tests.web.browser import Load, api_token


@contextmanager
def prometheus(workdir: Path, port: int, target: str) -> Iterator[None]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run scripts/ci-tools.sh (apt-get install prometheus)")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: mlops, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_charts_read_prometheus_when_it_is_set(tmp_path: Path) -> None:
    prom_port = free_port()
    env = {"MLOPS_PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}"}
    with running_up(tmp_path, env=env) as live:
        target = live.url.removeprefix("http://")
        token = api_token(live)
        headers = {"Authorization": f"Bearer {token}"}
        with prometheus(tmp_path, prom_port, target), Load(live.url, token, "demo") as load:
            deadline = time.monotonic() + 120
            body: dict[str, Any] = {}
            while time.monotonic() < deadline:
                answer = httpx.get(
                    f"{live.url}/api/v1/models/demo/traffic", headers=headers, timeout=30
                )
                if answer.status_code == 200:
                    body = answer.json()
                    series = {s["version"]: s for s in body["series"]}
                    points = series.get(1, {}).get("points", [])
                    if any(p["rps"] > 0 and p["p95_ms"] for p in points):
                        break
                time.sleep(1)
            else:
                pytest.fail(f"no traffic from Prometheus in time: {body}")
        assert load.sent > 0
        assert body["source"] == "prometheus"
        assert body["step_s"] == 10
        assert series[1]["role"] == "primary"
        last = [p for p in points if p["rps"] > 0][-1]
        assert last["error_rate"] == 0
        assert last["p95_ms"] > 0


async def test_an_unreachable_prometheus_is_a_503_naming_the_setting(
    settings_factory: Any,
) -> None:
    settings = settings_factory(prometheus_url=f"http://127.0.0.1:{free_port()}")
    async for platform in start_platform(settings):
        token = await platform.login()
        await platform.client.post("/api/v1/models", json={"name": "churn"}, headers=bearer(token))
        answer = await platform.client.get("/api/v1/models/churn/traffic", headers=bearer(token))
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "traffic_unavailable"
        assert "MLOPS_PROMETHEUS_URL" in answer.json()["error"]["message"]
