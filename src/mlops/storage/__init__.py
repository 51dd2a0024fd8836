"""Artifact storage: model files behind one small async interface (local disk or S3)."""

from mlops.storage.base import (
    ArtifactStore,
    ObjectNotFound,
    StorageError,
    StoredObject,
    validate_key,
)
from mlops.storage.factory import create_store
from mlops.storage.local import LocalArtifactStore
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
