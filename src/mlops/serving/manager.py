"""Loaded models and the routing table built from the catalog.

``refresh()`` reads a catalog snapshot, loads (downloads, loads, warms) every
version a policy needs that is not loaded yet, then swaps in a new routing table
in one assignment, so a request sees either the old table or the new one. A
version that fails to load never takes traffic: the route keeps the version it had.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops.deployments.schemas import DeploymentPolicy
from mlops.errors import Conflict, NotFound, Unavailable
from mlops.modelformats import ModelInfo, Runtime, load_runtime, sample_input
from mlops.modelformats.onnx_cache import ConversionCache
from mlops.serving.artifacts import ArtifactCache
from mlops.serving.batching import BatchObserver, InferenceRunner, InferenceThread
from mlops.serving.catalog import Catalog, CatalogSnapshot, ModelSpec, VersionSpec
from mlops.serving.guard import GuardMonitor
from mlops.serving.metrics import ServingMetrics, VersionMetrics
from mlops.storage import ArtifactStore

log = logging.getLogger("mlops.serving")
# A version that failed to load is tried again at most this often (a storage outage
# heals; a corrupt artifact does not, and must not be fetched on every request).
LOAD_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class BatchingConfig:
    enabled: bool = True
    max_batch_size: int = 1024
    max_batch_time: float = 0.0


@dataclass
class LoadedVersion:
    spec: VersionSpec
    runtime: Runtime
    runner: InferenceRunner
    loaded_at: float
    metrics: VersionMetrics

    @property
    def key(self) -> tuple[str, int]:
        return self.spec.model, self.spec.version


@dataclass
class Route:
    """How one model's requests are served right now."""

    model: str
    policy: DeploymentPolicy
    primary: LoadedVersion | None
    canary: LoadedVersion | None = None
    shadow: LoadedVersion | None = None
    guard: GuardMonitor | None = None


@dataclass(frozen=True, slots=True)
class LoadFailure:
    reason: str
    retry_at: float  # monotonic: not tried again before then


class ModelManager:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ArtifactStore,
        cache_dir: Path,
        metrics: ServingMetrics,
        batching: BatchingConfig,
        conversion_secret: str | None = None,
        conversion_previous_secrets: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``conversion_secret`` (the platform's secret key): keep verified ONNX
        conversions under ``cache_dir/onnx``, signed with it, so that a restart serves
        them without importing (or converting with) the model's own library; entries
        signed with ``conversion_previous_secrets`` (a rotation's) are served too."""
        self.catalog = catalog
        self.store = store
        self.cache_dir = cache_dir
        self.metrics = metrics
        self.batching = batching
        self.snapshot = CatalogSnapshot()
        self.routes: dict[str, Route] = {}
        self.loaded: dict[tuple[str, int], LoadedVersion] = {}
        # Without a pause before the next try, every refresh and every ?version=N
        # request re-fetched and re-loaded a version that cannot load.
        self.failed: dict[tuple[str, int], LoadFailure] = {}
        # Times the pause after a failed load (a test moves it rather than waiting 30 s).
        self.clock = clock
        self._threads: dict[str, InferenceThread] = {}  # one inference thread per model
        self._refresh_lock = asyncio.Lock()
        self._load_locks: dict[tuple[str, int], asyncio.Lock] = {}
        self.conversions = (
            ConversionCache(cache_dir / "onnx", conversion_secret, conversion_previous_secrets)
            if conversion_secret
            else None
        )
        self.artifacts = ArtifactCache(
            store=store, directory=cache_dir, on_mismatch=self._integrity_failure
        )

    # Loading

    def _integrity_failure(self, spec: VersionSpec, source: str) -> None:
        self.metrics.integrity_failures.labels(spec.model, str(spec.version), source).inc()

    def _load_blocking(self, spec: VersionSpec, path: Path) -> Runtime:
        info = ModelInfo.model_validate(
            {"format": spec.format, "signature": spec.signature, "details": dict(spec.details)}
        )
        runtime = load_runtime(path, info, conversions=self.conversions)
        runtime.predict(sample_input(spec.signature, rows=4))  # warm before it takes traffic
        return runtime

    def _observer(self, spec: VersionSpec) -> BatchObserver:
        labels = (spec.model, str(spec.version))
        latency = self.metrics.inference_latency.labels(*labels)
        sizes = self.metrics.batch_size.labels(*labels)

        def observe(rows: int, seconds: float) -> None:
            latency.observe(seconds)
            sizes.observe(rows)

        return observe

    async def load(self, spec: VersionSpec) -> LoadedVersion:
        key = (spec.model, spec.version)
        if key in self.loaded:
            return self.loaded[key]
        lock = self._load_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self.loaded:
                return self.loaded[key]
            failure = self.failed.get(key)
            if failure is not None and self.clock() < failure.retry_at:
                raise _unavailable(spec.model, spec.version, failure.reason)
            try:
                path = await self.artifacts.fetch(spec)
                runtime = await asyncio.to_thread(self._load_blocking, spec, path)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"[:500]
                if key not in self.failed:
                    await self._report_failure(spec, reason)
                self.failed[key] = LoadFailure(reason, self.clock() + LOAD_RETRY_SECONDS)
                self.metrics.load_failures.labels(spec.model, str(spec.version)).inc()
                log.error(
                    "model version failed to load",
                    extra={"model": spec.model, "version": spec.version, "reason": reason},
                )
                raise _unavailable(spec.model, spec.version, reason) from None
            runner = InferenceRunner(
                runtime,
                batching=self.batching.enabled,
                max_batch_size=self.batching.max_batch_size,
                max_batch_time=self.batching.max_batch_time,
                observe=self._observer(spec),
                thread=self._thread_of(spec.model),
            )
            loaded = LoadedVersion(
                spec,
                runtime,
                runner,
                time.time(),
                self.metrics.for_version(spec.model, spec.version),
            )
            self.loaded[key] = loaded
            self.failed.pop(key, None)
            self.metrics.loaded.labels(spec.model, str(spec.version)).set(1)
            log.info(
                "model version loaded",
                extra={"model": spec.model, "version": spec.version, "runtime": runtime.name},
            )
            return loaded

    async def _report_failure(self, spec: VersionSpec, reason: str) -> None:
        try:
            await self.catalog.report_load_failure(spec.model, spec.version, reason)
        except Exception:  # reporting must not turn one failure into two
            log.exception("could not record a load failure")

    async def _try_load(self, model: ModelSpec, version: int | None) -> LoadedVersion | None:
        if version is None or version not in model.versions:
            return None
        try:
            return await self.load(model.versions[version])
        except Unavailable:
            return None

    # Routing table

    async def refresh(self) -> None:
        """Re-read the catalog; load what the policies need; swap the routing table."""
        async with self._refresh_lock:
            snapshot = await self.catalog.snapshot()
            routes: dict[str, Route] = {}
            for name, model in snapshot.models.items():
                old = self.routes.get(name)
                primary = await self._try_load(model, model.primary_version)
                if primary is None and old is not None and old.primary is not None:
                    if old.primary.spec.version in model.versions:
                        primary = old.primary  # keep serving what worked
                policy = model.policy
                canary = await self._try_load(
                    model, policy.canary.version if policy.canary else None
                )
                shadow = await self._try_load(
                    model, policy.shadow.version if policy.shadow else None
                )
                guard = None
                if canary is not None and policy.guard is not None:
                    kept = old.guard if old is not None and old.canary is canary else None
                    same = kept is not None and old is not None and old.policy == policy
                    guard = kept if same and kept is not None else GuardMonitor(policy.guard)
                routes[name] = Route(name, policy, primary, canary, shadow, guard)
            self.snapshot = snapshot
            self.routes = routes
            await self._unload_unused()

    def _thread_of(self, model: str) -> InferenceThread:
        thread = self._threads.get(model)
        if thread is None:
            thread = self._threads[model] = InferenceThread(f"inference_{model}")
        return thread

    def _end_idle_threads(self) -> None:
        in_use = {model for model, _ in self.loaded}
        for model in list(self._threads):
            if model not in in_use:
                self._threads.pop(model).close()

    async def _unload_unused(self) -> None:
        keep: set[tuple[str, int]] = set()
        for route in self.routes.values():
            for loaded in (route.primary, route.canary, route.shadow):
                if loaded is not None:
                    keep.add(loaded.key)
        # Versions asked for explicitly (?version=N) stay while they exist in the catalog.
        for key, loaded in list(self.loaded.items()):
            model = self.snapshot.models.get(key[0])
            if key in keep or (model is not None and key[1] in model.versions):
                continue
            del self.loaded[key]
            self.metrics.loaded.labels(key[0], str(key[1])).set(0)
            await loaded.runner.close()
        self._end_idle_threads()

    def drop_canary(self, model: str) -> None:
        """Take a canary out of this process's traffic at once (its guard tripped)."""
        route = self.routes.get(model)
        if route is not None:
            self.routes[model] = Route(
                route.model, route.policy, route.primary, None, route.shadow, None
            )

    # Lookups used by the data plane

    def model_spec(self, name: str) -> ModelSpec:
        model = self.snapshot.models.get(name)
        if model is None:
            raise NotFound(
                f"model {name!r} does not exist (or has no ready version)",
                code="model_not_found",
            )
        return model

    async def version(self, name: str, version: int) -> LoadedVersion:
        model = self.model_spec(name)
        spec = model.versions.get(version)
        if spec is None:
            raise NotFound(
                f"model {name!r} has no servable version {version}", code="version_not_found"
            )
        return await self.load(spec)

    async def alias(self, name: str, alias: str) -> LoadedVersion:
        model = self.model_spec(name)
        version = model.aliases.get(alias)
        if version is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}", code="alias_not_found")
        return await self.version(name, version)

    def route(self, name: str) -> Route:
        model = self.model_spec(name)
        route = self.routes.get(name)
        if route is None or route.primary is None:
            target = model.primary_version
            if target is not None and (failure := self.failed.get((name, target))) is not None:
                raise _unavailable(name, target, failure.reason)
            raise Conflict(
                f"model {name!r} has no version to serve: point its "
                f"{model.policy.alias!r} alias at a version with "
                f"PUT /api/v1/models/{name}/aliases/{model.policy.alias}",
                code="no_servable_version",
            )
        return route

    async def close(self) -> None:
        for loaded in self.loaded.values():
            await loaded.runner.close()
        self.loaded.clear()
        self._end_idle_threads()


def _unavailable(model: str, version: int, reason: str) -> Unavailable:
    return Unavailable(
        f"version {version} of {model!r} failed to load: {reason}", code="model_load_failed"
    )
