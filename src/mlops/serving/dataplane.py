"""The data plane: one request in, one prediction out, whatever the protocol.

REST (``/api/v1/models/.../predict``) and the Open Inference Protocol (``/v2``)
both call ``DataPlane.predict``: route to a version (explicit, alias, or the
deployment policy with its canary), run it through the version's batcher, mirror
it to a shadow version off the response path, and feed the canary's guard.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.errors import Conflict, Invalid, PlatformError
from mlops.modelformats import Prediction
from mlops.serving.batching import Mirrored, MirrorSink
from mlops.serving.catalog import Catalog
from mlops.serving.guard import Caller
from mlops.serving.manager import LoadedVersion, ModelManager, Route
from mlops.serving.metrics import ServingMetrics
from mlops.serving.sampling import DriftSampler
from mlops.serving.validation import check_array, rows_to_array

log = logging.getLogger("mlops.serving")


@dataclass(frozen=True, slots=True)
class PredictResult:
    model: str
    version: int
    prediction: Prediction
    loaded: LoadedVersion


class InferenceFailed(PlatformError):
    status_code = 500
    code = "inference_failed"


def in_canary(percent: float, routing_key: str | None) -> bool:
    """Whether this request goes to the canary: sticky per routing key, else random."""
    if routing_key:
        digest = hashlib.blake2b(routing_key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % 10_000 < percent * 100
    return random.random() * 100 < percent


class DataPlane:
    # Set by the process wiring when drift monitoring samples live traffic.
    sampler: DriftSampler | None = None

    def __init__(
        self,
        *,
        manager: ModelManager,
        catalog: Catalog,
        metrics: ServingMetrics,
        max_rows: int,
    ) -> None:
        self.manager = manager
        self.catalog = catalog
        self.metrics = metrics
        self.max_rows = max_rows
        self._background: set[asyncio.Task[None]] = set()
        self._sinks: dict[tuple[str, int], functools.partial[None]] = {}
        self._shadows_in_flight = 0
        self._shadows_idle = asyncio.Event()
        self._shadows_idle.set()

    def default_model(self) -> str:
        name = self.manager.snapshot.default_model
        if name is None:
            raise Conflict(
                "no default model is set: name a model in the path "
                "(POST /api/v1/models/{name}/predict), or set MLOPS_DEFAULT_MODEL or "
                "PUT /api/v1/settings/default-model",
                code="no_default_model",
            )
        return name

    async def select(
        self, name: str, *, version: int | None, alias: str | None, routing_key: str | None
    ) -> tuple[LoadedVersion, Route | None, bool]:
        """(version to run, the policy route when it decided, whether it is the canary)."""
        if version is not None:
            return await self.manager.version(name, version), None, False
        if alias is not None:
            return await self.manager.alias(name, alias), None, False
        route = self.manager.route(name)
        assert route.primary is not None
        canary = route.canary
        if canary is not None and route.policy.canary is not None:
            if in_canary(route.policy.canary.percent, routing_key):
                return canary, route, True
        return route.primary, route, False

    async def run(self, loaded: LoadedVersion, x: np.ndarray) -> tuple[Prediction, float]:
        """The prediction, and the runtime's seconds per row (see ``predict_timed``)."""
        try:
            return await loaded.runner.predict_timed(x)
        except PlatformError:
            raise
        except Exception as exc:
            log.exception("inference failed", extra={"model": loaded.spec.model})
            raise InferenceFailed(
                f"version {loaded.spec.version} of {loaded.spec.model!r} failed on this input: "
                f"{type(exc).__name__}"
            ) from None

    async def predict(
        self,
        name: str,
        data: Any,
        *,
        version: int | None = None,
        alias: str | None = None,
        routing_key: str | None = None,
        array: np.ndarray | None = None,
        may_hold_booleans: bool = True,
        caller: Caller = None,
    ) -> PredictResult:
        """Validate, route and run. ``array`` is a decoded tensor (V2) instead of rows;
        ``may_hold_booleans``: see ``rows_to_array``; ``caller``: who asks (the user id),
        for the canary guard's bound on one caller's weight."""
        start = time.perf_counter()
        loaded, route, is_canary = await self.select(
            name, version=version, alias=alias, routing_key=routing_key
        )
        metrics = loaded.metrics
        try:
            if array is None:
                x = rows_to_array(
                    data,
                    loaded.spec.signature,
                    model_format=loaded.spec.format,
                    max_rows=self.max_rows,
                    may_hold_booleans=may_hold_booleans,
                )
            else:
                x = check_array(
                    array,
                    loaded.spec.signature,
                    model_format=loaded.spec.format,
                    max_rows=self.max_rows,
                )
        except PlatformError:
            metrics.invalid.inc()
            raise
        try:
            prediction, per_row = await self.run(loaded, x)
        except PlatformError:
            metrics.error.inc()
            if is_canary and route is not None:
                self._watch_canary(route, loaded, 0.0, True, caller)
            raise
        if is_canary and route is not None:
            self._watch_canary(route, loaded, per_row, False, caller)
        metrics.ok.inc()
        if self.sampler is not None:
            self.sampler.offer(loaded.spec, x, prediction.values)
        metrics.rows.inc(len(x))
        if is_canary:
            metrics.canary.inc()
        if route is not None and route.shadow is not None:
            self._mirror(route.shadow, x, prediction)
        metrics.latency.observe(time.perf_counter() - start)
        return PredictResult(loaded.spec.model, loaded.spec.version, prediction, loaded)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _mirror(self, shadow: LoadedVersion, x: np.ndarray, primary: Prediction) -> None:
        """Run ``x`` on the shadow too, off the response path."""
        try:
            shadow.runner.mirror(x, primary.values, self._shadow_sink(shadow))
        except Exception:  # unloading: a shadow's failure is recorded, never seen
            shadow.metrics.shadow_error.inc()
            return
        if self._shadows_in_flight == 0:
            self._shadows_idle.clear()
        self._shadows_in_flight += 1

    def _shadow_sink(self, shadow: LoadedVersion) -> MirrorSink:
        sink = self._sinks.get(shadow.key)
        if sink is None or sink.args[0] is not shadow:
            sink = self._sinks[shadow.key] = functools.partial(self._shadow_done, shadow)
        return sink

    def _shadow_done(
        self, shadow: LoadedVersion, copies: list[Mirrored], error: BaseException | None
    ) -> None:
        """A batch of shadow copies answered (or failed): metrics only, never the caller."""
        self._shadows_in_flight -= len(copies)
        if self._shadows_in_flight <= 0:
            self._shadows_in_flight = 0
            self._shadows_idle.set()
        metrics = shadow.metrics
        if error is not None:
            metrics.shadow_error.inc(len(copies))
            return
        now = time.perf_counter()
        for copy in copies:
            metrics.shadow_latency.observe(now - copy.started)
        metrics.shadow_ok.inc(len(copies))
        expected = np.concatenate([copy.expected for copy in copies])
        got = np.concatenate(
            [copy.prediction.values for copy in copies if copy.prediction is not None]
        )
        differ = _disagreements(expected, got)
        if differ:
            metrics.shadow_disagreements.inc(differ)

    def _watch_canary(
        self,
        route: Route,
        canary: LoadedVersion,
        seconds_per_row: float,
        failed: bool,
        caller: Caller,
    ) -> None:
        guard = route.guard
        if guard is None or guard.tripped:
            return
        guard.record(seconds_per_row, failed, caller)
        reason = guard.breach()
        if reason is None:
            return
        guard.tripped = True
        self.manager.drop_canary(route.model)
        self.metrics.guard_trips.labels(canary.spec.model, str(canary.spec.version)).inc()
        self._spawn(
            self.catalog.report_guard_breach(canary.spec.model, canary.spec.version, reason)
        )

    async def drain(self) -> None:
        """Wait for shadow requests and guard reports still running."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._shadows_idle.wait()


def _disagreements(a: np.ndarray, b: np.ndarray) -> int:
    if a.shape != b.shape:
        return len(a)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return int(np.count_nonzero(~np.isclose(a, b, rtol=1e-4, atol=1e-6)))
    return int(np.count_nonzero(a != b))


def check_probabilities(loaded: LoadedVersion) -> None:
    if not loaded.spec.signature.has_probabilities:
        raise Invalid(
            f"version {loaded.spec.version} of {loaded.spec.model!r} gives no probabilities "
            f"({loaded.spec.signature.output_kind})",
            code="no_probabilities",
        )
