"""Liveness, readiness and metrics endpoints, for probes and scrapers.

Probes carry no credentials, so ``/health`` and ``/ready`` answer anyone, with
component names and their status only: what failed and why (paths, URLs,
exception texts) goes to the log. ``/metrics`` names models and versions, so
outside development Prometheus must send ``MLOPS_METRICS_TOKEN``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from mlops.api.deps import ContextDep
from mlops.config import Settings
from mlops.db.schema import schema_status
from mlops.errors import Unauthorized

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 3.0
log = logging.getLogger("mlops.health")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    status: Literal["ok", "error", "disabled"]
    # Why, for the log only: probes are unauthenticated.
    detail: str | None = Field(None, exclude=True)


class Readiness(BaseModel):
    # "degraded": a model server alone whose database or Redis is failing; it keeps
    # serving what it has loaded, so it stays in its Service (ADR 0006).
    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, Check]


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers. Checks no dependency, so a database outage
    does not make Kubernetes restart every pod."""
    return Health()


async def _check_database(ctx: ContextDep) -> Check:
    async with ctx.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return Check(status="ok")


async def _check_schema(ctx: ContextDep) -> Check:
    ok, detail = await schema_status(ctx.engine)
    return Check(status="ok" if ok else "error", detail=detail)


async def _check_redis(ctx: ContextDep) -> Check:
    if not ctx.settings.redis_url:
        return Check(status="disabled")
    await ctx.kv.ping()
    return Check(status="ok")


async def _check_storage(ctx: ContextDep) -> Check:
    await ctx.store.check()
    return Check(status="ok")


async def _guarded(name: str, check: object) -> Check:
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT_S)  # type: ignore[arg-type]
    except TimeoutError:
        return Check(status="error", detail=f"{name} did not answer in {CHECK_TIMEOUT_S}s")
    except Exception as exc:  # any failure of a dependency means "not ready"
        return Check(status="error", detail=f"{type(exc).__name__}: {exc}"[:300])


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is failing."}},
)
async def ready(ctx: ContextDep, request: Request) -> JSONResponse:
    """Readiness: database reachable, schema current, Redis (when configured) and the
    artifact store reachable. A model server alone answers 200 ``degraded`` while one of
    them fails, since it keeps serving the models it has loaded; it answers 503 while
    loading or draining."""
    serving_down = request.app.state.serves_models and not request.app.state.serving_ready
    if request.app.state.shutting_down or serving_down:
        detail = "shutting down" if request.app.state.shutting_down else "loading models"
        log.info("not ready: %s", detail)
        body = Readiness(status="unavailable", checks={"process": Check(status="error")})
        return JSONResponse(body.model_dump(), status_code=503)
    database = await _guarded("database", _check_database(ctx))
    schema = (
        await _guarded("schema", _check_schema(ctx))
        if database.status == "ok"
        else Check(status="error", detail="database unreachable")
    )
    checks = {
        "database": database,
        "schema": schema,
        "redis": await _guarded("redis", _check_redis(ctx)),
        "artifact_store": await _guarded("artifact store", _check_storage(ctx)),
    }
    failed = [name for name, check in checks.items() if check.status == "error"]
    for name in failed:
        log.warning("not ready: %s failed: %s", name, checks[name].detail, extra={"check": name})
    if not failed:
        body = Readiness(status="ok", checks=checks)
    elif request.app.state.needs_database:
        body = Readiness(status="unavailable", checks=checks)
    else:
        # Taking every model-server replica out of its Service would turn an outage of
        # the control plane into an outage of predictions, which it keeps answering.
        body = Readiness(status="degraded", checks=checks)
    return JSONResponse(body.model_dump(), status_code=503 if body.status == "unavailable" else 200)


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: ContextDep, request: Request) -> Response:
    """Prometheus metrics; with ``MLOPS_METRICS_TOKEN`` set, only for a caller sending it."""
    check_metrics_token(ctx.settings, request.headers.get("authorization"))
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


def warn_if_metrics_open(settings: Settings) -> None:
    if settings.metrics_token is None:
        # Outside development the process refuses to start (bootstrap.py).
        log.warning(
            "/metrics is open to anyone who can reach this port (it lists model names and "
            "versions); set MLOPS_METRICS_TOKEN to require Prometheus' bearer token"
        )


def check_metrics_token(settings: Settings, authorization: str | None) -> None:
    expected = settings.metrics_token
    if expected is None:
        return
    scheme, _, sent = (authorization or "").partition(" ")
    # Digests of equal length: the comparison reveals neither content nor length.
    same = hmac.compare_digest(
        hashlib.sha256(sent.strip().encode()).digest(),
        hashlib.sha256(expected.get_secret_value().encode()).digest(),
    )
    if scheme.lower() != "bearer" or not same:
        raise Unauthorized(
            "/metrics needs the scrape token: send Authorization: Bearer <MLOPS_METRICS_TOKEN>"
        )
