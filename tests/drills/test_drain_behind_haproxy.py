"""Drill: a model server SIGTERMed under load, with a second replica, behind haproxy
health-checking ``/ready`` (a local stand-in for the Kubernetes Service): not one request
fails at the client across the whole drain.

The replicas are real ``mlops model-server`` processes on a throwaway PostgreSQL and
Redis; the model is registered through an in-process API on the same backends.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, running_platform
from tests.drills.cluster import Cluster
from tests.drills.haproxy import HealthCheck, haproxy
from tests.drills.traffic import Traffic, assert_every, until
from tests.registry.helpers import create_model, upload

pytestmark = pytest.mark.slow
SHUTDOWN_DELAY_S = 2.0  # MLOPS_SHUTDOWN_DELAY_SECONDS of the replicas
CHECK = HealthCheck(inter_s=0.2, fall=2, timeout_s=0.5)
ROW = {"data": [[0.1, -0.2, 0.3, 0.4, -0.5]]}


async def test_sigterm_behind_haproxy_fails_no_request(
    cluster: Cluster, model_files: dict[str, Path]
) -> None:
    # haproxy must take a draining replica out before it closes its listener, with room
    # to spare on a busy machine (docs/reliability.md).
    assert CHECK.worst_case_s * 2 <= SHUTDOWN_DELAY_S
    await cluster.migrate()
    async with running_platform(cluster.settings(cluster.root / "api"), {"api"}) as api:
        admin = await api.login()
        assert (await create_model(api, admin, "m")).status_code == 201
        assert (await upload(api, admin, "m", model_files["onnx"])).status_code == 201
        moved = await api.client.put(
            "/api/v1/models/m/aliases/production", json={"version": 1}, headers=bearer(admin)
        )
        assert moved.status_code == 200, moved.text
    delay = str(SHUTDOWN_DELAY_S)
    first = await cluster.start("model-server", "a", MLOPS_SHUTDOWN_DELAY_SECONDS=delay)
    second = await cluster.start("model-server", "b", MLOPS_SHUTDOWN_DELAY_SECONDS=delay)
    backends = [(first.name, first.port), (second.name, second.port)]
    with haproxy(cluster.root, backends, CHECK) as balancer:
        async with httpx.AsyncClient(base_url=balancer.url, timeout=60) as client:
            traffic = Traffic(client)
            for _ in range(4):
                traffic.loop(
                    lambda n: traffic.call(
                        "predict", "POST", "/api/v1/models/m/predict", json=ROW,
                        headers=bearer(admin),
                    ),
                    pause=0.005,
                )  # fmt: skip

            def served_by(name: str, after: float) -> bool:
                return any(
                    a.headers.get("x-served-by") == name and a.started > after
                    for a in traffic.answers
                )

            async def both_serving() -> bool:
                return served_by("a", 0) and served_by("b", 0)

            await until(both_serving, "both replicas in rotation")
            sigterm_at = time.monotonic()
            first.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(first.process.wait, 60)
            exited_at = time.monotonic()

            async def answered_after_exit() -> bool:
                return sum(a.started > exited_at for a in traffic.answers) >= 20

            await until(answered_after_exit, "requests after the replica exited")
            await traffic.stop()

    assert code in (0, -signal.SIGTERM), first.log_text()
    assert_every(traffic.answers, lambda a: a.status == 200, "200")
    # The drain was under load: the replica answered after its SIGTERM, until haproxy took
    # it out, and the other one answered everything after it had gone.
    assert served_by("a", sigterm_at)
    after_exit = [a for a in traffic.answers if a.started > exited_at]
    assert_every(after_exit, lambda a: a.headers.get("x-served-by") == "b", "served by b")
    assert "timeout graceful shutdown exceeded" not in first.log_text()
