"""Prometheus metrics of jobs and drift (the workers' HPA scales on the queue depth)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


class JobMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Counter(
            "mlops_jobs_total",
            "Jobs that reached a final status (succeeded, failed, cancelled).",
            ["type", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "mlops_job_duration_seconds",
            "Time from a job's start to its end.",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "mlops_queue_depth",
            "Job tasks waiting for a worker (queued, or left by a lost worker), by job type.",
            ["type"],
            registry=registry,
        )
        self.rows = Counter(
            "mlops_job_rows_total", "Rows scored by batch jobs.", ["type"], registry=registry
        )
        self.retries = Counter(
            "mlops_job_shard_retries_total",
            "Job tasks tried again after a failed attempt or a lost worker.",
            ["type"],
            registry=registry,
        )
        self.feature_drift = Gauge(
            "mlops_feature_drift_psi",
            "Population stability index of a feature's live inputs against the reference.",
            ["model", "version", "feature"],
            registry=registry,
        )
        self.prediction_drift = Gauge(
            "mlops_prediction_drift_psi",
            "Population stability index of live predictions against the reference's.",
            ["model", "version"],
            registry=registry,
        )
