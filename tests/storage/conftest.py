from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from mlops.storage import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from tests.seaweed import SeaweedFS, seaweedfs_server

__all__ = ["seaweedfs_server"]  # re-exported so pytest registers the fixture here


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # Session scope like tests/conftest.py's, so session-scoped async fixtures can use it.
    return "asyncio"


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs_server: SeaweedFS) -> str:
    # One bucket per session: each SeaweedFS bucket is a collection with its own
    # volumes, so a bucket per test would waste disk; tests get a unique prefix instead.
    return seaweedfs_server.create_bucket("storage")


S3StoreFactory = Callable[[str, str], S3ArtifactStore]


@pytest.fixture
def make_s3_store(seaweedfs_server: SeaweedFS) -> S3StoreFactory:
    """``make_s3_store(bucket, prefix)``: an S3 store on the test server, test credentials."""

    def make(bucket: str, prefix: str) -> S3ArtifactStore:
        return S3ArtifactStore(
            bucket,
            prefix,
            endpoint_url=seaweedfs_server.endpoint_url,
            region=seaweedfs_server.region,
            access_key=seaweedfs_server.access_key,
            secret_key=seaweedfs_server.secret_key,
        )

    return make


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ArtifactStore]:
    """An empty store of each kind; the behavioural tests run once per backend."""
    backend: ArtifactStore
    if request.param == "local":
        # Outside the test's tmp_path, so tests can assert that nothing else is left there.
        backend = LocalArtifactStore(tmp_path_factory.mktemp("local-store") / "root")
    else:
        # Looked up lazily so that `-k local` runs do not start SeaweedFS.
        make: S3StoreFactory = request.getfixturevalue("make_s3_store")
        bucket: str = request.getfixturevalue("s3_bucket")
        backend = make(bucket, f"t-{uuid.uuid4().hex[:12]}")
    async with backend:
        yield backend
