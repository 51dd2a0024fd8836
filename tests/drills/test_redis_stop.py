"""Drill: Redis stopped for 10 s under steady predictions, with two ``mlops up`` processes
(API and model server each) on a throwaway PostgreSQL and a throwaway Redis.

What ADR 0006 promises, asserted here: predictions keep answering in both processes;
logins need Redis (failed-login counting) and answer 503 ``redis_unavailable`` with
``Retry-After``; logouts, alias moves and other registry writes are done in the database
and answer as usual. Once Redis is back, without a restart: a token revoked during the
outage is refused by both processes, the alias move made during it is served by both,
and a revocation and an alias move made after it reach both. Redis restarts on its
append-only file, so what it cached before the outage (such as "not revoked") is still
there: a stale answer would show.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, bearer
from tests.drills.cluster import Cluster, ServerProcess
from tests.drills.traffic import Answer, Traffic, assert_every, until

pytestmark = pytest.mark.slow
OUTAGE_S = 10.0
ROW = {"data": [[0.1, -0.2, 0.3, 0.4, -0.5]]}
VERA = "vera-Passphrase-42"


def _unavailable(answer: Answer) -> bool:
    return (
        answer.status == 503
        and answer.headers.get("retry-after") == "5"
        and '"redis_unavailable"' in answer.body
    )


async def test_redis_stopped_for_10_s_under_load(
    cluster: Cluster, model_files: dict[str, Path]
) -> None:
    # Polls far beyond the drill: alias moves must arrive as Redis events.
    a = await cluster.start("up", "a", MLOPS_CATALOG_POLL_SECONDS="600")
    b = await cluster.start("up", "b", MLOPS_CATALOG_POLL_SECONDS="600")
    servers = (a, b)
    async with httpx.AsyncClient(timeout=30) as client:
        traffic = Traffic(client)

        async def login(server: ServerProcess, username: str, password: str) -> Answer:
            return await traffic.call(
                f"login {server.name}",
                "POST",
                f"{server.url}/api/v1/auth/login",
                json={"username": username, "password": password},
            )

        async def token(username: str, password: str) -> str:
            answer = await login(a, username, password)
            assert answer.status == 200, answer
            value: str = answer.json()["access_token"]
            return value

        async def call(server: ServerProcess, what: str, method: str, path: str, credential: str,
                       **kwargs: object) -> Answer:  # fmt: skip
            return await traffic.call(
                f"{what} {server.name}", method, f"{server.url}{path}",
                headers=bearer(credential), **kwargs,
            )  # fmt: skip

        async def predict(server: ServerProcess, credential: str, what: str = "check") -> Answer:
            return await call(server, what, "POST", "/api/v1/models/predict", credential, json=ROW)

        admin = await token("admin", ADMIN_PASSWORD)
        with model_files["onnx"].open("rb") as model:
            uploaded = await call(
                a, "upload", "POST", "/api/v1/models/demo/versions", admin,
                files={"file": ("model.onnx", model.read())},
            )  # fmt: skip
        assert uploaded.status == 201, uploaded
        created = await call(
            a, "user", "POST", "/api/v1/users", admin,
            json={"username": "vera", "password": VERA, "role": "viewer"},
        )  # fmt: skip
        assert created.status == 201, created
        kept, out_during, out_after = [await token("vera", VERA) for _ in range(3)]

        async def refused_everywhere(credential: str) -> bool:
            return all([(await predict(s, credential)).status == 401 for s in servers])

        async def serving_everywhere(version: int) -> bool:
            answers = [await predict(s, kept) for s in servers]
            return all(x.headers.get("x-model-version") == str(version) for x in answers)

        async def move_alias(server: ServerProcess, version: int) -> Answer:
            return await call(
                server, "move", "PUT", "/api/v1/models/demo/aliases/production", admin,
                json={"version": version},
            )  # fmt: skip

        for server in servers:  # each process has read every credential's state
            for credential in (kept, out_during, out_after):
                assert (await predict(server, credential)).status == 200
        await until(lambda: serving_everywhere(1), "version 1 in both processes")

        def keep_predicting(server: ServerProcess) -> None:
            traffic.loop(lambda n: predict(server, kept, "predict"))

        for server in servers:
            keep_predicting(server)

        cluster.redis.kill()
        down_at = time.monotonic()
        for server in servers:
            assert _unavailable(await login(server, "vera", VERA))
        logout = await call(a, "logout", "POST", "/api/v1/auth/logout", out_during)
        assert logout.status == 204, logout
        assert (await predict(a, out_during)).status == 401  # at once in the writing process
        moved = await move_alias(a, 2)
        assert moved.status == 200, moved
        made = await call(b, "create", "POST", "/api/v1/models", admin, json={"name": "during"})
        assert made.status == 201, made
        await asyncio.sleep(OUTAGE_S - (time.monotonic() - down_at))  # the rest of the outage
        await asyncio.to_thread(cluster.redis.start)
        up_at = time.monotonic()

        await until(lambda: refused_everywhere(out_during), "the outage's logout everywhere")
        await until(lambda: serving_everywhere(2), "the outage's alias move everywhere")
        for server in servers:

            async def logs_in(server: ServerProcess = server) -> bool:
                return (await login(server, "vera", VERA)).status == 200

            await until(logs_in, f"a login on {server.name} after the outage")
        assert (await call(b, "logout", "POST", "/api/v1/auth/logout", out_after)).status == 204
        await until(lambda: refused_everywhere(out_after), "a logout after the outage everywhere")
        assert (await move_alias(b, 1)).status == 200
        await until(lambda: serving_everywhere(1), "an alias move after the outage everywhere")
        await traffic.stop()

    for server in servers:
        predictions = traffic.of(f"predict {server.name}")
        assert_every(predictions, lambda x: x.status == 200, "200")
        during = [x for x in predictions if x.started > down_at and x.finished < up_at]
        assert len(during) >= 10, f"too few predictions in {server.name} during the outage"
    # Nothing answered a server error but the promised 503s.
    assert_every(
        traffic.answers, lambda x: x.status is not None and x.status < 500 or _unavailable(x),
        "answered without a server error",
    )  # fmt: skip
