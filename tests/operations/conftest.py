"""Operations fixtures: the embedded shape keeps artifacts and backups in files, the
PostgreSQL + Redis shape keeps both in S3 on a real SeaweedFS server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mlops.config import Settings
from tests import conftest as root
from tests.cli.live_server import LiveServer, running_up
from tests.registry.model_files import write_model_files
from tests.seaweed import SeaweedFS


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model_files(tmp_path_factory.mktemp("model-files"))


@pytest.fixture(scope="session")
def ops_bucket(seaweedfs_server: SeaweedFS) -> str:
    return seaweedfs_server.create_bucket("ops")


@pytest.fixture
def s3_env(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> SeaweedFS | None:
    if backend != "postgres":
        return None
    s3: SeaweedFS = request.getfixturevalue("seaweedfs_server")
    for name, value in s3.aws_env().items():
        monkeypatch.setenv(name, value)
    return s3


@pytest.fixture
def ops_settings(
    settings_factory: Any, backend: str, s3_env: SeaweedFS | None, request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    """Settings of the test's shape; artifacts in S3 for the PostgreSQL shape."""

    def make(**overrides: Any) -> Settings:
        if s3_env is not None:
            bucket: str = request.getfixturevalue("ops_bucket")
            overrides.setdefault("artifact_store", f"s3://{bucket}/a-{uuid.uuid4().hex[:10]}")
            overrides.setdefault("s3_endpoint_url", s3_env.endpoint_url)
        settings: Settings = settings_factory(**overrides)
        return settings

    return make


@pytest.fixture
def backup_location(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, s3_env: SeaweedFS | None
) -> str:
    """Where backups go: a directory, or an S3 prefix for the PostgreSQL shape."""
    if s3_env is None:
        return str(tmp_path / "backups")
    bucket: str = request.getfixturevalue("ops_bucket")
    return f"s3://{bucket}/backups-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def fresh_target(
    backend: str, ops_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[Callable[[], Settings]]:
    """Settings of a new, empty platform of the same shape (own database, store)."""
    created: list[str] = []

    def make() -> Settings:
        n = len(created)
        if backend == "postgres":
            name = f"mlops_restore_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(f"{root.PG_ADMIN_URL}/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            return ops_settings(database_url=f"{root.PG_ADMIN_URL}/{name}")
        created.append(str(n))
        return ops_settings(data_dir=tmp_path / f"fresh-{n}")

    yield make
    if backend == "postgres":
        with psycopg.connect(f"{root.PG_ADMIN_URL}/postgres", autocommit=True) as admin:
            for name in created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def live_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The live platform's directory; its settings' MLOPS_DATA_DIR is ``data`` in it."""
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="session")
def live(live_workdir: Path) -> Iterator[LiveServer]:
    """One `mlops up` (development: admin with a printed password, the demo model as
    the default) for the scripts' tests: they only read, or clean up after themselves."""
    with running_up(live_workdir) as server:
        yield server
