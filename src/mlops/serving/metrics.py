"""Prometheus metrics of inference, labelled by model and version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mlops.observability.metrics import LATENCY_BUCKETS

# Inference itself is often well under a millisecond.
INFERENCE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, *LATENCY_BUCKETS)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
