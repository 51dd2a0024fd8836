"""Artifact storage: model files behind one small async interface (local disk or S3).

``S3ArtifactStore`` is imported on first use: boto3 costs a few tenths of a second
to import, which a process on local files should not pay at every start.
"""

from typing import TYPE_CHECKING, Any

from mlops.storage.base import (
    ArtifactStore,
    ObjectNotFound,
    StorageError,
    StoredObject,
    validate_key,
)
from mlops.storage.factory import create_store
from mlops.storage.local import LocalArtifactStore

if TYPE_CHECKING:
    from mlops.storage.s3 import S3ArtifactStore

__all__ = [
    "ArtifactStore",
    "LocalArtifactStore",
    "ObjectNotFound",
    "S3ArtifactStore",
    "StorageError",
    "StoredObject",
    "create_store",
    "validate_key",
]


def __getattr__(name: str) -> Any:
    if name == "S3ArtifactStore":
        from mlops.storage.s3 import S3ArtifactStore

        return S3ArtifactStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
