"""Prometheus metrics of inference, labelled by model and version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mlops.observability.metrics import LATENCY_BUCKETS

# Inference itself is often well under a millisecond.
INFERENCE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, *LATENCY_BUCKETS)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)


@dataclass(frozen=True, slots=True)
class VersionMetrics:
    """One version's labelled children, looked up once (``labels()`` costs a lock and a
    hash per call, several times per request)."""

    ok: Any
    invalid: Any
    error: Any
    rows: Any
    latency: Any
    canary: Any
    shadow_ok: Any
    shadow_error: Any
    shadow_latency: Any
    shadow_disagreements: Any


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._versions: dict[tuple[str, int], VersionMetrics] = {}
        labels = ["model", "version"]
        self.predictions = Counter(
            "mlops_predictions_total",
            "Prediction requests by outcome (ok, invalid, error).",
            [*labels, "outcome"],
            registry=registry,
        )
        self.rows = Counter(
            "mlops_prediction_rows_total", "Rows predicted.", labels, registry=registry
        )
        self.inference_latency = Histogram(
            "mlops_inference_duration_seconds",
            "Runtime time per batch (the model alone).",
            labels,
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.request_latency = Histogram(
            "mlops_prediction_duration_seconds",
            "End-to-end time of a prediction request, from parsed body to answer.",
            labels,
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "mlops_batch_size_rows",
            "Rows per runtime call (adaptive batching merges requests).",
            labels,
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.loaded = Gauge(
            "mlops_models_loaded", "1 for each model version loaded.", labels, registry=registry
        )
        self.load_failures = Counter(
            "mlops_model_load_failures_total",
            "Model versions that failed to load (they never take traffic).",
            labels,
            registry=registry,
        )
        self.integrity_failures = Counter(
            "mlops_artifact_integrity_failures_total",
            "Model files refused because their bytes did not match the sha256 recorded at "
            "upload, by where they came from (store: a download; cache: the local copy).",
            [*labels, "source"],
            registry=registry,
        )
        self.canary_requests = Counter(
            "mlops_canary_requests_total",
            "Requests the canary policy sent to the canary version.",
            labels,
            registry=registry,
        )
        self.shadow_requests = Counter(
            "mlops_shadow_requests_total",
            "Requests mirrored to a shadow version, by outcome.",
            [*labels, "outcome"],
            registry=registry,
        )
        self.shadow_latency = Histogram(
            "mlops_shadow_duration_seconds",
            "Shadow version's inference time.",
            labels,
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.shadow_disagreements = Counter(
            "mlops_shadow_disagreements_total",
            "Rows where the shadow version's prediction differed from the primary's.",
            labels,
            registry=registry,
        )
        self.guard_trips = Counter(
            "mlops_canary_guard_trips_total",
            "Canaries taken out of traffic by their guard.",
            labels,
            registry=registry,
        )

    def for_version(self, model: str, version: int) -> VersionMetrics:
        found = self._versions.get((model, version))
        if found is None:
            labels = (model, str(version))
            found = VersionMetrics(
                ok=self.predictions.labels(*labels, "ok"),
                invalid=self.predictions.labels(*labels, "invalid"),
                error=self.predictions.labels(*labels, "error"),
                rows=self.rows.labels(*labels),
                latency=self.request_latency.labels(*labels),
                canary=self.canary_requests.labels(*labels),
                shadow_ok=self.shadow_requests.labels(*labels, "ok"),
                shadow_error=self.shadow_requests.labels(*labels, "error"),
                shadow_latency=self.shadow_latency.labels(*labels),
                shadow_disagreements=self.shadow_disagreements.labels(*labels),
            )
            self._versions[(model, version)] = found
        return found
