"""Traffic without Prometheus: a process that serves models samples its own counters.

Every ``interval`` seconds the sampler reads the prediction counters and the latency
histogram from the process's metrics registry and keeps the last ``window`` seconds of
snapshots; the rate, error rate and p95 of each interval come from the difference of
two snapshots, as Prometheus' ``rate()`` would compute them. It sees this process's
traffic only, which is all the traffic in ``mlops up``; with several model-server
replicas the API reads Prometheus instead (``MLOPS_PROMETHEUS_URL``, ADR 0010).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from mlops.traffic.quantile import bucket_quantile
from mlops.traffic.schemas import TrafficPoint

log = logging.getLogger("mlops.traffic")
REQUESTS = "mlops_predictions_total"
LATENCY_BUCKET = "mlops_prediction_duration_seconds_bucket"
Key = tuple[str, int]  # (model, version)


@dataclass(slots=True)
class _Counts:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


Snapshot = dict[Key, _Counts]


def read_counts(registry: CollectorRegistry) -> Snapshot:
    snapshot: Snapshot = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name not in (REQUESTS, LATENCY_BUCKET):
                continue
            try:
                key = (sample.labels["model"], int(sample.labels["version"]))
            except (KeyError, ValueError):
                continue
            counts = snapshot.setdefault(key, _Counts())
            if sample.name == REQUESTS:
                counts.requests += sample.value
                if sample.labels.get("outcome") == "error":
                    counts.errors += sample.value
            else:
                counts.buckets[float(sample.labels["le"])] = sample.value
    return snapshot


def interval_point(t: float, seconds: float, before: _Counts | None, now: _Counts) -> TrafficPoint:
    """The interval between two snapshots of one version (``before`` None: it is new)."""
    old = before or _Counts()
    requests = max(0.0, now.requests - old.requests)
    errors = max(0.0, now.errors - old.errors)
    buckets = sorted((le, max(0.0, c - old.buckets.get(le, 0.0))) for le, c in now.buckets.items())
    p95 = bucket_quantile(0.95, buckets) if requests else None
    return TrafficPoint(
        t=t,
        rps=requests / seconds,
        p95_ms=None if p95 is None else p95 * 1000,
        error_rate=errors / requests if requests else None,
    )


class TrafficSampler:
    """Snapshots of one registry's prediction metrics over a sliding window."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        interval: float = 2.0,
        window: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self.interval = interval
        self.window = window
        self._clock = clock
        self._snapshots: deque[tuple[float, Snapshot]] = deque(maxlen=int(window / interval) + 2)
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> None:
        self._snapshots.append((self._clock(), read_counts(self._registry)))

    def series(self, model: str, *, window: float | None = None) -> dict[int, list[TrafficPoint]]:
        """Each version's points over the last ``window`` seconds (at most the sampler's)."""
        horizon = self._clock() - min(window or self.window, self.window)
        found: dict[int, list[TrafficPoint]] = {}
        pairs = zip(list(self._snapshots), list(self._snapshots)[1:], strict=False)
        for (t0, before), (t1, after) in pairs:
            if t1 < horizon or t1 <= t0:
                continue
            for (name, version), counts in after.items():
                if name != model:
                    continue
                point = interval_point(t1, t1 - t0, before.get((name, version)), counts)
                found.setdefault(version, []).append(point)
        return found

    def start(self) -> None:
        self.run_once()
        self._task = asyncio.create_task(self._loop(), name="traffic-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.run_once()
            except Exception:  # a bad sample must not stop the charts for good
                log.exception("sampling the prediction metrics failed")
