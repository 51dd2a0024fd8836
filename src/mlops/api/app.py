"""``create_app(settings)``: the API server as one ASGI app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mlops import __version__
from mlops.api.errors import install_error_handlers
from mlops.api.health import router as health_router
from mlops.api.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from mlops.audit.router import router as audit_router
from mlops.auth.router import router as auth_router
from mlops.config import Settings
from mlops.context import PlatformContext, create_context
from mlops.db.schema import schema_status
from mlops.errors import ConfigError
from mlops.observability.metrics import HttpMetrics, PoolCollector
from mlops.registry.router import router as registry_router

DEFAULT_BODY_LIMIT = 1 << 20  # 1 MiB for JSON bodies; uploads get their own limit
UPLOAD_PATH = re.compile(r"^/api/v1/models/[^/]+/versions/?$")


def create_app(settings: Settings, *, check_schema: bool = True) -> FastAPI:
    """Build the API app. The context (engine, caches) is created when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = create_context(settings)
        try:
            if check_schema:
                ok, detail = await schema_status(ctx.engine)
                if not ok:
                    raise ConfigError(detail)
            app.state.ctx = ctx
            registry.register(PoolCollector(ctx.engine))
            yield
        finally:
            app.state.shutting_down = True
            await ctx.close()

    registry = CollectorRegistry()
    app = FastAPI(
        title="MLOps Platform API",
        version=__version__,
        lifespan=lifespan,
        description="Model registry, deployments and inference. Authenticate with "
        "`Authorization: Bearer <token or API key>`; get a token at `POST /api/v1/auth/login`.",
    )
    app.state.registry = registry
    app.state.http_metrics = HttpMetrics(registry)
    app.state.shutting_down = False
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(registry_router)
    app.include_router(audit_router)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=DEFAULT_BODY_LIMIT,
        # Uploads: the file limit plus room for the form's other parts.
        limits={UPLOAD_PATH: settings.max_upload_bytes + (1 << 20)},
    )
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=app.state.http_metrics,
        access_log_enabled=settings.access_log,
    )
    return app


def context_of(app: FastAPI) -> PlatformContext:
    ctx: PlatformContext = app.state.ctx
    return ctx
