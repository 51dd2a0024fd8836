"""Metrics added for the rules: every process exports its CPU and memory (the process
collector: what a Prometheus outside Kubernetes reads) and its artifact store errors."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mlops.storage.base import StorageError
from tests.conftest import Platform


async def _scrape(platform: Platform) -> dict[str, float]:
    answer = await platform.client.get("/metrics")
    assert answer.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if not sample.labels
    }


async def test_process_cpu_and_memory_are_exported(platform: Platform) -> None:
    samples = await _scrape(platform)
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_resident_memory_bytes"] > 10_000_000


async def test_every_storage_error_is_counted(platform: Platform) -> None:
    before = (await _scrape(platform))["mlops_storage_errors_total"]
    # Raised by any backend (local disk, S3, the workers' objects): counted once each.
    StorageError("Could not read artifact 'models/1/versions/1/model.onnx': gone.")
    StorageError("Artifact storage could not read it: access denied.")
    after = (await _scrape(platform))["mlops_storage_errors_total"]
    assert after - before == 2
