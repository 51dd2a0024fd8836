"""Which series the rules and dashboards may read, and where each comes from."""

from __future__ import annotations

# Exported by the platform's own /metrics (api, model server, workers): the
# end-to-end test finds each of these in a live scrape of `mlops up`.
PLATFORM = {
    "mlops_http_requests_total",
    "mlops_http_request_duration_seconds_bucket",
    "mlops_login_failures_total",
    "mlops_db_pool_connections_in_use",
    "mlops_db_pool_max_connections",
    "mlops_db_pool_size",
    "mlops_redis_up",
    "mlops_redis_outage_seconds",
    "mlops_redis_outages_total",
    "mlops_redis_errors_total",
    "mlops_storage_errors_total",
    "mlops_backup_last_success_timestamp_seconds",
    "mlops_predictions_total",
    "mlops_prediction_rows_total",
    "mlops_prediction_duration_seconds_bucket",
    "mlops_prediction_duration_seconds_count",
    "mlops_inference_duration_seconds_bucket",
    "mlops_batch_size_rows_bucket",
    "mlops_models_loaded",
    "mlops_model_load_failures_total",
    "mlops_artifact_integrity_failures_total",
    "mlops_canary_requests_total",
    "mlops_canary_guard_trips_total",
    "mlops_shadow_requests_total",
    "mlops_shadow_duration_seconds_bucket",
    "mlops_shadow_disagreements_total",
    "mlops_jobs_total",
    "mlops_job_duration_seconds_bucket",
    "mlops_job_rows_total",
    "mlops_job_shard_retries_total",
    "mlops_queue_depth",
    "mlops_feature_drift_psi",
    "mlops_prediction_drift_psi",
    # The process collector: CPU and memory outside Kubernetes.
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}

# Exported by something else in the cluster (see docs/monitoring.md).
EXTERNAL = {
    # cAdvisor, in the kubelet
    "container_cpu_usage_seconds_total": "cAdvisor",
    "container_memory_working_set_bytes": "cAdvisor",
    # kube-state-metrics
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "kube_pod_container_status_waiting_reason": "kube-state-metrics",
    "kube_pod_status_ready": "kube-state-metrics",
    "kube_pod_status_phase": "kube-state-metrics",
    "kube_cronjob_status_last_successful_time": "kube-state-metrics",
    "kube_cronjob_created": "kube-state-metrics",
    # cert-manager's controller
    "certmanager_certificate_expiration_timestamp_seconds": "cert-manager",
    # Prometheus itself
    "up": "Prometheus",
    "ALERTS": "Prometheus",
}
