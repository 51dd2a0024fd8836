"""Liveness, readiness and metrics endpoints (no authentication: probes and scrapers)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from mlops.api.deps import ContextDep
from mlops.db.schema import schema_status

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    status: Literal["ok", "error", "disabled"]
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
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
        return Check(status="disabled", detail="MLOPS_REDIS_URL unset: in-process state")
    await ctx.kv.ping()
    return Check(status="ok")


async def _check_storage(ctx: ContextDep) -> Check:
    await ctx.store.check()
    return Check(status="ok", detail=ctx.store.url)


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
    artifact store reachable."""
    serving_down = request.app.state.serves_models and not request.app.state.serving_ready
    if request.app.state.shutting_down or serving_down:
        detail = "shutting down" if request.app.state.shutting_down else "loading models"
        body = Readiness(
            status="unavailable", checks={"process": Check(status="error", detail=detail)}
        )
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
    ok = all(check.status != "error" for check in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
