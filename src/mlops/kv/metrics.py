"""Prometheus metrics of the shared store's health, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlops.kv.base import KeyValueStore
from mlops.kv.guarded import GuardedKeyValueStore


class RedisHealthCollector(Collector):
    def __init__(self, store: GuardedKeyValueStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        store = self._store
        up = GaugeMetricFamily(
            "mlops_redis_up", "1 while this process reaches Redis, 0 during an outage."
        )
        up.add_metric([], 1.0 if store.up else 0.0)
        outage = GaugeMetricFamily(
            "mlops_redis_outage_seconds", "How long the current Redis outage has lasted; 0 when up."
        )
        outage.add_metric([], store.outage_seconds())
        outages = CounterMetricFamily(
            "mlops_redis_outages", "Times this process found Redis unreachable."
        )
        outages.add_metric([], store.outages_total)
        errors = CounterMetricFamily(
            "mlops_redis_errors",
            "Calls to Redis that failed because it was unreachable (each answered from "
            "what the process knows, deferred, or a 503).",
        )
        errors.add_metric([], store.errors_total)
        yield from (up, outage, outages, errors)


def register_kv_metrics(registry: CollectorRegistry, kv: KeyValueStore) -> None:
    """Health metrics for a store that can become unreachable (none for the in-process one)."""
    if isinstance(kv, GuardedKeyValueStore):
        registry.register(RedisHealthCollector(kv))
