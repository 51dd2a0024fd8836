from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mlops.storage import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from tests.seaweed import SeaweedFS, seaweedfs_server

__all__ = ["seaweedfs_server"]  # re-exported so pytest registers the fixture here


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs_server: SeaweedFS) -> str:
    # One bucket per session: each SeaweedFS bucket is a collection with its own
    # volumes, so a bucket per test would waste disk; tests get a unique prefix instead.
    return seaweedfs_server.create_bucket("storage")


def make_s3_store(server: SeaweedFS, bucket: str, prefix: str) -> S3ArtifactStore:
    return S3ArtifactStore(
        bucket,
        prefix,
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ArtifactStore]:
    """An empty store of each kind; the behavioural tests run once per backend."""
    backend: ArtifactStore
    if request.param == "local":
        backend = LocalArtifactStore(tmp_path / "store")
    else:
        # Looked up lazily so that `-k local` runs do not start SeaweedFS.
        server: SeaweedFS = request.getfixturevalue("seaweedfs_server")
        bucket: str = request.getfixturevalue("s3_bucket")
        backend = make_s3_store(server, bucket, f"t-{uuid.uuid4().hex[:12]}")
    async with backend:
        yield backend
