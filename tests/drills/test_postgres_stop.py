"""Drill: PostgreSQL stopped for 10 s under steady predictions and writes.

A real ``mlops up`` (API, model server, worker) runs on a throwaway PostgreSQL cluster
and a throwaway Redis; loops predict, create models and probe ``/ready`` throughout.
ADR 0006 promises: predictions keep answering (credentials cached in Redis, models
loaded), writes answer 503 ``database_unavailable`` with ``Retry-After`` and succeed once
the database is back, ``/ready`` says 503 meanwhile, and an acknowledged write is never
lost.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, bearer
from tests.drills.cluster import Cluster
from tests.drills.traffic import Answer, Traffic, assert_every, until

pytestmark = pytest.mark.slow
OUTAGE_S = 10.0
ROW = {"data": [[0.1, -0.2, 0.3, 0.4, -0.5]]}


def _refused_politely(answer: Answer) -> bool:
    return (
        answer.status == 503
        and answer.headers.get("retry-after") == "5"
        and '"database_unavailable"' in answer.body
    )


async def test_postgres_stopped_for_10_s_under_load(cluster: Cluster) -> None:
    server = await cluster.start("up", "up")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        auth = bearer(login.json()["access_token"])
        traffic = Traffic(client)
        for _ in range(2):
            traffic.loop(
                lambda n: traffic.call(
                    "predict", "POST", "/api/v1/models/predict", json=ROW, headers=auth
                )
            )
        traffic.loop(
            lambda n: traffic.call(
                f"write drill-{n}", "POST", "/api/v1/models", json={"name": f"drill-{n}"},
                headers=auth,
            ),
            pause=0.05,
        )  # fmt: skip
        traffic.loop(lambda n: traffic.call("ready", "GET", "/ready"), pause=0.1)

        async def written_since(moment: float) -> bool:
            return any(a.status == 201 and a.started > moment for a in traffic.of("write"))

        await until(lambda: written_since(0), "a write before the outage")
        await asyncio.to_thread(cluster.postgres.stop)
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE_S)  # the drill's outage, under load
        # The outage ends when the start begins: `pg_ctl -w start` returns a poll after
        # the server accepts connections, and writes may already succeed in between.
        restarting_at = time.monotonic()
        await asyncio.to_thread(cluster.postgres.start)
        up_at = time.monotonic()
        await until(lambda: written_since(up_at), "a write succeeding after the outage")

        async def ready_since(moment: float) -> bool:
            return any(a.status == 200 and a.started > moment for a in traffic.of("ready"))

        await until(lambda: ready_since(up_at), "/ready 200 after the outage")
        await traffic.stop()

    def during(answer: Answer) -> bool:
        return answer.started > down_at and answer.finished < restarting_at

    predictions = traffic.of("predict")
    assert_every(predictions, lambda a: a.status == 200, "200")
    assert sum(map(during, predictions)) >= 10, "too few predictions during the outage"
    writes = traffic.of("write")
    assert_every(writes, lambda a: a.status == 201 or _refused_politely(a), "201 or 503")
    assert_every(filter(during, writes), _refused_politely, "503 while PostgreSQL was down")
    assert any(map(during, writes))
    ready = traffic.of("ready")
    assert_every(filter(during, ready), lambda a: a.status == 503, "503 during the outage")
    assert any(map(during, ready))
    # Every acknowledged write is in the database.
    acknowledged = {a.what.removeprefix("write ") for a in writes if a.status == 201}
    stored = {name for (name,) in cluster.query("SELECT name FROM registered_models")}
    assert acknowledged - stored == set()
