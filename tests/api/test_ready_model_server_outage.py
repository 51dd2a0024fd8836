"""Readiness through a Redis outage: a model server alone stays in its Service.

Kubernetes takes a pod whose readiness fails out of the Service. A model server keeps
answering predictions from what it has loaded while Redis or the database is down
(ADR 0006), so failing its readiness would turn a control-plane outage into an outage
of predictions; the API, which needs both to answer, does report 503.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from tests.conftest import postgres_settings, running_platform
from tests.throwaway import ThrowawayRedis, throwaway_redis

__all__ = ["throwaway_redis"]  # fixture


async def test_a_model_server_alone_stays_ready_degraded_while_the_api_is_not(
    throwaway_redis: ThrowawayRedis, postgres_url: str, tmp_path: Path
) -> None:
    settings = postgres_settings(
        postgres_url, throwaway_redis.url, tmp_path / "data", "ready-outage:"
    )
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(running_platform(settings, {"api"}))
        model_server = await stack.enter_async_context(running_platform(settings, {"serving"}))
        for platform in (api, model_server):
            answer = await platform.client.get("/ready")
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "ok"

        throwaway_redis.kill()

        served = await model_server.client.get("/ready")
        assert served.status_code == 200, served.text
        assert served.json()["status"] == "degraded"
        assert served.json()["checks"]["redis"] == {"status": "error"}
        refused = await api.client.get("/ready")
        assert refused.status_code == 503, refused.text
        assert refused.json()["status"] == "unavailable"
        assert refused.json()["checks"]["redis"] == {"status": "error"}
