"""Jobs fixtures: a platform (API and model server) on both backends, with the registry's
model files; workers run in the test process (``drain``) or as real ``mlops worker``
processes (``tests/workers/processes.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Platform, start_platform
from tests.registry.conftest import model_files, registry_bucket, registry_settings

__all__ = ["model_files", "registry_bucket", "registry_settings"]


@pytest.fixture
def job_settings(registry_settings: Any) -> Any:
    """Settings for job tests: short leases and backoffs, so retries happen in seconds."""

    def make(**overrides: Any) -> Any:
        overrides.setdefault("worker_lease_seconds", 3)
        overrides.setdefault("worker_poll_seconds", 0.1)
        overrides.setdefault("job_retry_backoff_seconds", 0.1)
        overrides.setdefault("worker_grace_seconds", 5)
        return registry_settings(**overrides)

    return make


@pytest.fixture
async def platform(job_settings: Any) -> AsyncIterator[Platform]:
    async for running in start_platform(job_settings()):
        yield running
