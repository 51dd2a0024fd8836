"""Model files on the model server's disk, held to the sha256 recorded at upload.

The registry records each version's SHA-256 when it stores the upload. Whoever can
write to the artifact store (a shared bucket) or to the model server's cache
directory could otherwise change what a version predicts without a trace: so every
download is hashed while it is written, and a cached file is hashed again before it
is loaded. Bytes that do not match are refused (logged with both digests, counted in
``mlops_artifact_integrity_failures_total``), and the version fails to load rather
than serve them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from mlops.serving.catalog import VersionSpec
from mlops.storage import ArtifactStore

log = logging.getLogger("mlops.serving")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"\.[a-z0-9]{1,16}")
_READ_CHUNK = 1 << 20

Source = Literal["store", "cache"]
# Told of every mismatch: (version, where the bytes came from).
MismatchObserver = Callable[[VersionSpec, Source], None]


class ArtifactIntegrityError(Exception):
    """The bytes fetched for a version are not the ones uploaded."""


class ArtifactCache:
    """Fetches versions' files into ``directory`` as ``<sha256>.<ext>``, verified."""

    def __init__(
        self, *, store: ArtifactStore, directory: Path, on_mismatch: MismatchObserver
    ) -> None:
        self.store = store
        self.directory = directory
        self._on_mismatch = on_mismatch

    async def fetch(self, spec: VersionSpec) -> Path:
        """The path of ``spec``'s file, whose bytes hash to ``spec.sha256``.

        A cached file that no longer matches is discarded and downloaded again; a
        download that does not match raises ``ArtifactIntegrityError``.
        """
        expected = spec.sha256.lower()
        if _SHA256.fullmatch(expected) is None:
            raise ArtifactIntegrityError(f"version {spec.version} of {spec.model!r} has no sha256")
        suffix = Path(spec.filename).suffix.lower()
        if _SUFFIX.fullmatch(suffix) is None:
            suffix = f".{spec.format}"
        path = self.directory / f"{expected}{suffix}"
        try:
            cached: str | None = await asyncio.to_thread(_file_sha256, path)
        except FileNotFoundError:
            cached = None
        if cached == expected:
            return path
        if cached is not None:
            # Changed on disk since it was verified: never load it; fetch it again.
            self._refused(spec, "cache", cached)
            path.unlink(missing_ok=True)
        await self._download(spec, path, expected)
        return path

    async def _download(self, spec: VersionSpec, path: Path, expected: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.directory / f".{expected}.{secrets.token_hex(4)}.part"
        digest = hashlib.sha256()
        try:
            with partial.open("xb") as out:
                async for chunk in self.store.open_stream(spec.storage_key):
                    # Off the event loop: hashing and writing a large file takes seconds.
                    await asyncio.to_thread(_write_and_hash, out, digest, chunk)
            actual = digest.hexdigest()
            if actual != expected:
                self._refused(spec, "store", actual)
                raise ArtifactIntegrityError(
                    f"the stored artifact does not match the sha256 recorded at upload "
                    f"(expected {expected}, got {actual}): the object "
                    f"{spec.storage_key!r} was changed after upload; upload the model "
                    "again as a new version"
                )
            # No fsync: a file torn by a crash fails the check above on its next load.
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def _refused(self, spec: VersionSpec, source: Source, actual: str) -> None:
        log.error(
            "model artifact does not match its sha256; refused",
            extra={
                "model": spec.model,
                "version": spec.version,
                "source": source,
                "storage_key": spec.storage_key,
                "expected_sha256": spec.sha256,
                "actual_sha256": actual,
            },
        )
        self._on_mismatch(spec, source)


def _write_and_hash(out: IO[bytes], digest: hashlib._Hash, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
