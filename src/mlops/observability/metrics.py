"""Prometheus metrics of the HTTP layer, the database pool and logins.

Each platform process serves its own ``/metrics`` (one process per container in
Kubernetes; Prometheus sums across pods), so no multiprocess mode is needed.
Metrics live in a registry per app, so several apps in one process (tests) do
not collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from mlops.storage.base import storage_failures

# 1 ms .. 2.5 s, dense enough to read a p95 anywhere between 1 ms and 1 s.
LATENCY_BUCKETS = (
    0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04,
    0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5,
)  # fmt: skip
# Routes are templates and methods a handful, but statuses are open-ended in theory.
MAX_CACHED_CHILDREN = 1024


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # labels() costs a lock and a tuple hash per call: keep the children, which
        # live as long as the registry (nothing here is ever removed).
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.requests = Counter(
            "mlops_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mlops_http_request_duration_seconds",
            "Time from request start to the end of the response, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.login_failures = Counter(
            "mlops_login_failures_total",
            "Failed logins by reason (invalid_credentials, locked).",
            ["reason"],
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (route, method, str(status))
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(route, method))
            if len(self._children) < MAX_CACHED_CHILDREN:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class PoolCollector(Collector):
    """Connections in use and pool capacity, read at scrape time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._engine.sync_engine.pool
        in_use = GaugeMetricFamily(
            "mlops_db_pool_connections_in_use", "Database connections checked out of the pool."
        )
        size = GaugeMetricFamily(
            "mlops_db_pool_size", "Connections the pool keeps open (pool_size)."
        )
        limit = GaugeMetricFamily(
            "mlops_db_pool_max_connections",
            "Most connections the pool will open (pool_size + max_overflow).",
        )
        if isinstance(pool, QueuePool):
            in_use.add_metric([], pool.checkedout())
            size.add_metric([], pool.size())
            limit.add_metric([], pool.size() + pool._max_overflow)
        yield in_use
        yield size
        yield limit


class StorageErrorsCollector(Collector):
    """Artifact store failures of this process, read at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        errors = CounterMetricFamily(
            "mlops_storage_errors",
            "Artifact store operations that failed (unreachable, permission denied, "
            "missing bucket), in this process.",
        )
        errors.add_metric([], storage_failures.total)
        yield errors


def register_process_metrics(registry: CollectorRegistry) -> None:
    """Metrics of the process as a whole: CPU seconds, resident memory and open files
    (``process_*``, the local stand-in for cAdvisor's container series, and what a
    Prometheus outside Kubernetes has for CPU and memory) and artifact store errors."""
    ProcessCollector(registry=registry)
    registry.register(StorageErrorsCollector())
