"""Registry fixtures: the embedded backend stores artifacts in files, the
PostgreSQL + Redis backend in S3 on a real SeaweedFS server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Platform, start_platform
from tests.registry.model_files import write_model_files
from tests.seaweed import SeaweedFS


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model_files(tmp_path_factory.mktemp("model-files"))


@pytest.fixture(scope="session")
def registry_bucket(seaweedfs_server: SeaweedFS) -> str:
    return seaweedfs_server.create_bucket("registry")


@pytest.fixture
def registry_settings(
    settings_factory: Any,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    def make(**overrides: Any) -> Any:
        if backend == "postgres":
            s3: SeaweedFS = request.getfixturevalue("seaweedfs_server")
            bucket: str = request.getfixturevalue("registry_bucket")
            for name, value in s3.aws_env().items():
                monkeypatch.setenv(name, value)
            overrides.setdefault("artifact_store", f"s3://{bucket}/t-{uuid.uuid4().hex[:10]}")
            overrides.setdefault("s3_endpoint_url", s3.endpoint_url)
        return settings_factory(**overrides)

    return make


@pytest.fixture
async def platform(registry_settings: Any) -> AsyncIterator[Platform]:
    """Overrides the root ``platform``, so ``admin_token`` logs in to this one."""
    async for running in start_platform(registry_settings()):
        yield running


@pytest.fixture
def registry(platform: Platform) -> Platform:
    return platform
