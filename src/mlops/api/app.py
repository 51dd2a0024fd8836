"""``create_app(settings)``: the platform's processes as one ASGI app.

``components`` picks what the process serves: ``api`` (control plane: auth,
registry, deployments, audit), ``serving`` (inference: REST predict and the Open
Inference Protocol), or both (``mlops up``). Paths are the same in every shape,
so a gateway only routes by path.
"""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from mlops import __version__
from mlops.api.cors import PlatformCORSMiddleware, has_origin
from mlops.api.docs import router as docs_router
from mlops.api.errors import install_error_handlers
from mlops.api.forwarded import ClientAddressResolver
from mlops.api.health import router as health_router
from mlops.api.health import warn_if_metrics_open
from mlops.api.middleware import BodyLimitMiddleware, ObservabilityMiddleware, RequestObserver
from mlops.api.openapi import use_platform_openapi
from mlops.auth.follower import UserChangeFollower
from mlops.config import Settings, ensure_secret_key, previous_secret_keys
from mlops.context import PlatformContext, create_context
from mlops.db.schema import schema_status
from mlops.errors import ConfigError
from mlops.kv.metrics import register_kv_metrics
from mlops.observability.metrics import HttpMetrics, PoolCollector, register_process_metrics
from mlops.scratch import ScratchClaim, claim_scratch
from mlops.serving.fastpath import PredictFront
from mlops.serving.fastpath import parse as parse_predict
from mlops.serving.oip_errors import OipErrorMiddleware

if TYPE_CHECKING:
    from mlops.auth.revocation_purge import RevocationPurger
    from mlops.backup.status import BackupStatus
    from mlops.serving.engine import ServingEngine
    from mlops.serving.sampling import DriftSampler
    from mlops.traffic.sampler import TrafficSampler
    from mlops.workers.process import WorkerProcess

# Each component's modules are imported only where that component runs: a model server
# never loads the registry, the web UI or the workers, nor their libraries (ADR 0009).
DEFAULT_BODY_LIMIT = 1 << 20  # 1 MiB for JSON bodies; uploads and predictions have their own
UPLOAD_PATH = re.compile(r"^/api/v1/models/[^/]+/versions/?$")
PREDICT_PATH = re.compile(r"^(/api/v1/models/([^/]+/)?predict|/v2/models/.+/infer)$")
DATASET_PATH = re.compile(r"^/api/v1/(datasets|models/[^/]+/versions/[0-9]+/reference)/?$")
ALL_COMPONENTS = frozenset({"api", "serving"})
# Background workers run only where asked: `mlops up` and `mlops worker`; the web UI's
# pages in `mlops up` and `mlops web`.
KNOWN_COMPONENTS = ALL_COMPONENTS | {"workers", "web"}
GC_THRESHOLDS = (10_000, 20, 20)


def _serving_engine(
    settings: Settings, ctx: PlatformContext, registry: CollectorRegistry, *, with_api: bool
) -> ServingEngine:
    from mlops.deployments.catalog import DatabaseCatalog
    from mlops.serving.engine import ServingEngine
    from mlops.serving.manager import BatchingConfig

    return ServingEngine(
        catalog=DatabaseCatalog(sessions=ctx.sessions, kv=ctx.kv, settings=settings),
        store=ctx.store,
        kv=ctx.kv,
        registry=registry,
        cache_dir=settings.data_dir / "model-cache",
        batching=BatchingConfig(
            enabled=settings.batching,
            max_batch_size=settings.max_batch_size,
            max_batch_time=settings.max_batch_time_ms / 1000,
        ),
        max_rows=settings.max_predict_rows,
        poll_seconds=settings.catalog_poll_seconds,
        # Registry writes bump the generation in ctx.kv: seen here if it is shared, or if
        # the API writes in this process.
        sees_every_change=ctx.kv.shared or with_api,
        conversion_secret=ensure_secret_key(settings),
        conversion_previous_secrets=previous_secret_keys(settings),
    )


class PlatformApp(FastAPI):
    """FastAPI, with the predict requests answered before its middleware stack."""

    predict_front: PredictFront | None = None
    # Browser calls with CORS on go through the middleware stack, which answers CORS.
    cors_enabled: bool = False
    client_resolver: ClientAddressResolver | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.client_resolver is not None and scope["type"] != "lifespan":
            # Before everything, so the access log and the login throttle see one client.
            self.client_resolver(scope)
        front = self.predict_front
        if front is not None:
            call = parse_predict(scope)
            if call is not None and not (self.cors_enabled and has_origin(scope)):
                await front(scope, receive, send, call)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    components: Collection[str] = ALL_COMPONENTS,
    check_schema: bool = True,
) -> FastAPI:
    """Build the app. The context (engine, caches, loaded models) is created at start."""
    unknown = set(components) - KNOWN_COMPONENTS
    if unknown or not components:
        raise ValueError(f"components must be among {sorted(KNOWN_COMPONENTS)}")
    serving = "serving" in components

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = create_context(settings)
        engine = None
        worker: WorkerProcess | None = None
        drift_sampler: DriftSampler | None = None
        backup_status: BackupStatus | None = None
        # Without a shared store, user changes made by other processes (the mlops users
        # commands) reach this one by reading the database (auth/follower.py).
        follower = (
            None if ctx.kv.shared else UserChangeFollower(sessions=ctx.sessions, gate=ctx.gate)
        )
        # Logged-out tokens past their expiry leave the database (auth/revocation_purge.py).
        purger: RevocationPurger | None = None
        # Upload temp files: those a killed process left are removed now (scratch.py).
        scratch: ScratchClaim | None = None
        if "api" in components:
            from mlops.auth.revocation_purge import RevocationPurger

            purger = RevocationPurger(
                sessions=ctx.sessions, interval=settings.revocation_purge_interval_seconds
            )
        try:
            if "api" in components:
                scratch = claim_scratch(settings.data_dir)
            # The web UI's pages alone use no database.
            if check_schema and set(components) != {"web"}:
                ok, detail = await schema_status(ctx.engine)
                if not ok:
                    raise ConfigError(detail)
            app.state.ctx = ctx
            registry.register(PoolCollector(ctx.engine))
            register_kv_metrics(registry, ctx.kv)
            if purger is not None:
                purger.start()
            if "api" in components:
                # The last `mlops backup create`, for the "backup missed" alert.
                from mlops.backup.status import BackupStatus

                backup_status = BackupStatus(ctx.sessions, registry)
                await backup_status.start()
            if follower is not None:
                follower.start()
            if serving:
                engine = _serving_engine(settings, ctx, registry, with_api="api" in components)
                app.state.dataplane = engine.dataplane
                if settings.drift_sample_rate > 0:
                    from mlops.serving.sampling import DriftSampler

                    drift_sampler = DriftSampler(
                        ctx.store,
                        rate=settings.drift_sample_rate,
                        per_minute=settings.drift_samples_per_minute,
                    )
                    engine.dataplane.sampler = drift_sampler
                    await drift_sampler.start()
                await engine.start()
                app.state.serving_ready = True
            if sampler is not None:
                sampler.start()
            if "workers" in components:
                from mlops.workers.process import WorkerProcess

                worker = WorkerProcess(settings, ctx.store, app.state.job_metrics, ctx.kv)
                await worker.start()
            # Everything loaded so far lives as long as the process: keep it out of the
            # cyclic collector, whose full passes otherwise pause every request for
            # tens of milliseconds, and collect young objects less often.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            yield
        finally:
            app.state.shutting_down = True
            if sampler is not None:
                await sampler.stop()
            if worker is not None:
                await worker.stop()
            if purger is not None:
                await purger.stop()
            if backup_status is not None:
                await backup_status.stop()
            if follower is not None:
                await follower.stop()
            if engine is not None:
                await engine.stop()
            if drift_sampler is not None:
                await drift_sampler.stop()
            await ctx.close()
            if scratch is not None:
                scratch.release()

    registry = CollectorRegistry()
    app = PlatformApp(
        title="MLOps Platform API",
        version=__version__,
        lifespan=lifespan,
        # /docs is served from local assets (api/docs.py); no CDN, no ReDoc, no OAuth2 page.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        description="Model registry, deployments and inference. Authenticate with "
        "`Authorization: Bearer <token or API key>`; get a token at `POST /api/v1/auth/login`.",
    )
    app.state.registry = registry
    if settings.trusted_proxies:
        app.client_resolver = ClientAddressResolver(settings.trusted_proxy_networks)
    app.state.http_metrics = HttpMetrics(registry)
    register_process_metrics(registry)
    app.state.shutting_down = False
    app.state.serving_ready = False
    app.state.serves_models = serving
    app.state.needs_database = "api" in components or "workers" in components
    if "api" in components or "workers" in components:
        from mlops.workers.metrics import JobMetrics

        app.state.job_metrics = JobMetrics(registry)
    install_error_handlers(app)
    use_platform_openapi(app)
    app.include_router(health_router)
    app.include_router(docs_router)
    warn_if_metrics_open(settings)
    if serving:
        _include_serving_routes(app)
    # The web UI's charts read this process's own counters when it serves models and
    # answers the API, unless Prometheus sees every replica (traffic/sampler.py).
    sampler: TrafficSampler | None = None
    if serving and "api" in components and not settings.prometheus_url:
        from mlops.traffic.sampler import TrafficSampler

        sampler = TrafficSampler(registry)
    app.state.traffic_sampler = sampler
    if "api" in components:
        _include_api_routes(app)
    if "web" in components:
        from mlops.web.router import router as web_router

        app.include_router(web_router)
    observer = RequestObserver(app.state.http_metrics, access_log_enabled=settings.access_log)
    if serving and settings.predict_fast_path:
        app.predict_front = PredictFront(
            plane=lambda: app.state.dataplane,
            gate=lambda: app.state.ctx.gate,
            observer=observer,
            body_limit=settings.max_predict_body_bytes,
        )
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=DEFAULT_BODY_LIMIT,
        limits={
            # Uploads: the file limit plus room for the form's other parts.
            UPLOAD_PATH: settings.max_upload_bytes + (1 << 20),
            PREDICT_PATH: settings.max_predict_body_bytes,
            DATASET_PATH: settings.max_upload_bytes + (1 << 20),
        },
    )
    if settings.cors_origin_list:
        app.add_middleware(PlatformCORSMiddleware, origins=settings.cors_origin_list)
        app.cors_enabled = True
    app.add_middleware(ObservabilityMiddleware, observer=observer)
    if serving:
        # Outermost: every /v2 error, whichever layer answered it, in the protocol's shape.
        app.add_middleware(OipErrorMiddleware)
    return app


def _include_serving_routes(app: FastAPI) -> None:
    from mlops.serving.rest import router as predict_router
    from mlops.serving.v2 import router as v2_router

    # Before the registry's routes: /api/v1/models/predict is not a model name.
    app.include_router(predict_router)
    app.include_router(v2_router)


def _include_api_routes(app: FastAPI) -> None:
    from mlops.audit.router import router as audit_router
    from mlops.auth.router import router as auth_router
    from mlops.auth.session_router import router as session_router
    from mlops.deployments.router import router as deployments_router
    from mlops.registry.router import router as registry_router
    from mlops.traffic.router import router as traffic_router
    from mlops.workers.drift.router import router as drift_router
    from mlops.workers.router import router as jobs_router

    for router in (
        auth_router,
        session_router,
        traffic_router,
        registry_router,
        deployments_router,
        audit_router,
        jobs_router,
        drift_router,
    ):
        app.include_router(router)


def context_of(app: FastAPI) -> PlatformContext:
    ctx: PlatformContext = app.state.ctx
    return ctx
