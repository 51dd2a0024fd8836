"""Verified ONNX conversions kept on local disk, so a restart needs no native library.

Converting a scikit-learn, XGBoost or LightGBM model to ONNX and checking that it
agrees with its own library costs seconds, most of them importing scikit-learn,
SciPy and the converters. A model server restarts often (a new pod under load),
and its models rarely change, so the verified graph is kept under a key made of
the model file's sha256 and the versions of every library that took part: the
same file with the same libraries gives the same graph, and a new file or an
upgraded library misses the cache and is converted and verified again. A model
whose conversion was refused is remembered too (and served natively at once).

The directory is the model server's cache (mode 700), and whoever can write there
must not be able to change what a version predicts (the artifacts beside it are
hashed against the registry before each load, serving/artifacts.py). So every entry
carries an HMAC-SHA256 under a key derived from the platform's secret key: an entry
that does not verify is ignored and deleted, and the model is converted and
verified again. Entries are written whole (write, then rename). During a rotation of
the secret key, an entry signed with one of the verify-only keys
(MLOPS_SECRET_KEY_PREVIOUS) is still served, and signed again with the new key, so
that a rotation converts nothing again and an entry outlives the old key's removal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlops import __version__

from .formats import ModelFormat

log = logging.getLogger("mlops.modelformats")
# Bump when what is cached, or how a conversion is made or verified, changes.
CACHE_FORMAT = 1
_CONVERSION_LIBRARIES = ("onnx", "onnxruntime")
_MAC_LABEL = b"mlops onnx conversion cache v1"
_MAC_BYTES = hashlib.sha256().digest_size
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class CachedConversion:
    """``onnx``: the verified graph; else ``refused``: why there is none."""

    onnx: bytes | None
    refused: str | None


class ConversionCache:
    """``directory`` holds the entries; ``secret`` is the platform's secret key (a key
    for this cache alone is derived from it), ``previous`` the verify-only keys of a
    rotation."""

    def __init__(self, directory: Path, secret: str, previous: Sequence[str] = ()) -> None:
        self.directory = directory
        self._mac_key = _derive(secret)
        self._previous_mac_keys = tuple(_derive(key) for key in previous)

    def key(self, path: Path, fmt: ModelFormat) -> str:
        """What decides the conversion: the file's content and every library involved."""
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        libraries = sorted({*fmt.libraries, *_CONVERSION_LIBRARIES})
        versions = ",".join(f"{name}={_version(name)}" for name in libraries)
        header = f"{CACHE_FORMAT}|mlops={__version__}|{fmt.name}|{versions}|"
        return hashlib.sha256(header.encode() + digest.digest()).hexdigest()

    def get(self, key: str) -> CachedConversion | None:
        """The entry under ``key``, or ``None`` (also for one that fails its HMAC)."""
        graph = self._read(f"{key}.onnx")
        if graph is not None:
            return CachedConversion(onnx=graph, refused=None)
        refused = self._read(f"{key}.refused")
        if refused is not None:
            return CachedConversion(onnx=None, refused=refused.decode("utf-8", "replace"))
        return None

    def put_onnx(self, key: str, data: bytes) -> None:
        self._write(f"{key}.onnx", data)

    def put_refused(self, key: str, reason: str) -> None:
        self._write(f"{key}.refused", reason.encode("utf-8"))

    def _mac(self, name: str, payload: bytes, mac_key: bytes | None = None) -> bytes:
        # The name is covered too: an entry cannot be moved under another key.
        return hmac.new(
            mac_key or self._mac_key, name.encode() + b"\0" + payload, hashlib.sha256
        ).digest()

    def _read(self, name: str) -> bytes | None:
        path = self.directory / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if hmac.compare_digest(mac, self._mac(name, payload)):
            return payload
        if any(
            hmac.compare_digest(mac, self._mac(name, payload, previous))
            for previous in self._previous_mac_keys
        ):
            self._resign(name, payload)
            return payload
        log.warning(
            "ONNX conversion cache entry fails its HMAC (altered, or written under another "
            "MLOPS_SECRET_KEY); ignored, deleted and converted again",
            extra={"path": str(path)},
        )
        path.unlink(missing_ok=True)
        return None

    def _resign(self, name: str, payload: bytes) -> None:
        """Sign an entry of the previous key with the current one (best effort: a cache
        that cannot be written is still read)."""
        try:
            self._write(name, payload)
        except OSError as exc:
            log.warning(
                "ONNX conversion cache entry could not be signed with the new key",
                extra={"path": str(self.directory / name), "error": str(exc)},
            )

    def _write(self, name: str, payload: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Whole or not at all: a reader never sees a half-written graph.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._mac(name, payload) + payload)
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _derive(secret: str) -> bytes:
    return hmac.new(secret.encode(), _MAC_LABEL, hashlib.sha256).digest()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"
