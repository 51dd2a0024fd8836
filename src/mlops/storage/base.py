"""The artifact store contract: model files addressed by opaque keys.

Keys are built by the caller from database ids (``models/12/versions/3/model.onnx``),
never from user-supplied names, and every backend validates them with
:func:`validate_key` before touching storage.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from mlops.errors import NotFound, PlatformError

MAX_KEY_LENGTH = 256
DEFAULT_CHUNK_SIZE = 1 << 20

# One segment starts with [a-z0-9], so "", ".", ".." and dot-files (which the local
# store uses for its temporary files) can never be keys; "/" only separates segments.
_SEGMENT = r"[a-z0-9][a-z0-9_.-]*"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
# A listing prefix is a key, a key followed by "/", or a partial segment.
_PREFIX_RE = re.compile(rf"(?:{_SEGMENT}/)*(?:{_SEGMENT})?")


class StorageError(PlatformError):
    """The artifact store is unreachable, misconfigured or failed an operation.

    Each one is counted (``storage_failures``; ``mlops_storage_errors_total`` on
    ``/metrics``), whichever backend raised it.
    """

    status_code = 503
    code = "storage_error"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        storage_failures.add()


class FailureCount:
    """How many times something failed in this process (one process per container, so
    this is the pod's count). ``+=`` on an int is atomic enough under the GIL for a
    metric."""

    def __init__(self) -> None:
        self.total = 0

    def add(self) -> None:
        self.total += 1


storage_failures = FailureCount()


class ObjectNotFound(NotFound):
    """No object is stored under ``key``."""

    def __init__(self, key: str, **kwargs: Any) -> None:
        super().__init__(f"Artifact {key!r} does not exist in the artifact store.", **kwargs)
        self.key = key


@dataclass(frozen=True)
class StoredObject:
    """What :meth:`ArtifactStore.put_file` stored: the key, its size in bytes, its hex SHA-256."""

    key: str
    size: int
    sha256: str


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a well-formed object key, else raise ``ValueError``.

    Accepted: lowercase ``[a-z0-9_.-]`` segments joined by single ``/``, each segment
    starting with ``[a-z0-9]``, at most 256 characters in total. This rules out ``..``,
    ``.``, empty segments, leading or trailing ``/`` and backslashes.
    """
    if (
        not isinstance(key, str)
        or len(key) > MAX_KEY_LENGTH
        or _KEY_RE.fullmatch(key) is None
        or ".." in key.split("/")  # already excluded by the regex; kept as a second guard
    ):
        raise ValueError(f"invalid artifact key {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` unchanged if it may start a valid key (``""`` allowed), else raise."""
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_KEY_LENGTH
        or _PREFIX_RE.fullmatch(prefix) is None
    ):
        raise ValueError(f"invalid artifact key prefix {prefix!r}")
    return prefix


def validate_chunk_size(chunk_size: int) -> int:
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return chunk_size


class ArtifactStore(abc.ABC):
    """Stores model files under keys; one implementation per backend (local disk, S3).

    Contract shared by all implementations (the same test suite runs against each):

    - Every method validates its key first and raises ``ValueError`` for a bad one.
    - Writes are atomic: a reader sees the old object, the new one, or nothing; never
      a partial file. The same holds for ``get_file``'s destination.
    - Missing objects: ``get_file``/``open_stream`` raise :class:`ObjectNotFound`;
      ``size`` returns ``None``; ``exists`` returns ``False``; ``delete`` does nothing.
    - Backend failures (unreachable, permission denied, missing bucket) raise
      :class:`StorageError`.
    - Blocking I/O runs in worker threads, so methods are safe to await on the event loop.
    """

    url: str
    """Where the store points, e.g. ``file:///var/lib/mlops/artifacts`` or ``s3://bucket/pfx``.

    For logs and status pages; it never contains credentials.
    """

    @abc.abstractmethod
    async def put_file(self, key: str, path: Path) -> StoredObject:
        """Store the local file ``path`` under ``key``, replacing any existing object.

        The SHA-256 is computed from the bytes read. The caller must not modify
        ``path`` while this runs.
        """

    @abc.abstractmethod
    async def get_file(self, key: str, dest: Path) -> None:
        """Download ``key`` to ``dest``, whose parent directory must exist.

        ``dest`` is written through a temporary file in the same directory and then
        renamed, so it is either absent/unchanged or complete.
        """

    @abc.abstractmethod
    def open_stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """Yield the object's bytes in chunks of at most ``chunk_size``; never all in memory.

        An invalid key raises ``ValueError`` immediately. A missing object raises
        :class:`ObjectNotFound` from the first iteration, before any bytes are yielded,
        so an HTTP handler should call :meth:`size` (or pull the first chunk) before
        sending headers.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing object is not an error."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or ``None`` if it does not exist."""

    @abc.abstractmethod
    async def list_keys(self, prefix: str = "") -> list[str]:
        """All keys starting with ``prefix`` (a plain string prefix, not a directory), sorted."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Readiness probe: raise :class:`StorageError` if the store cannot be used."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
