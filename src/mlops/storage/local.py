"""Artifact store on the local filesystem: the single-machine default."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, TypeVar, TypeVarTuple

import anyio.to_thread

from mlops.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ArtifactStore,
    ObjectNotFound,
    StorageError,
    StoredObject,
    validate_chunk_size,
    validate_key,
    validate_prefix,
)

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_COPY_CHUNK = 1 << 20
_DIR_MODE = 0o700
_TMP_PREFIX = ".tmp-"  # valid keys never have a segment starting with ".", so no clash


class LocalArtifactStore(ArtifactStore):
    """Stores each object as a file ``root/<key>``.

    ``root`` is created with mode 0o700 if missing (synchronously, at construction),
    and objects are written with mode 0o600. A key whose resolved path would leave
    ``root`` (e.g. through a symlink planted inside it) is rejected with ``ValueError``.
    Keys ``a`` and ``a/b`` cannot both exist, because ``a`` would be a file and a directory.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self._root = root.resolve()
        self.url = self._root.as_uri()

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root) or path == self._root:
            raise ValueError(f"artifact key {key!r} resolves outside the store root")
        return path

    async def put_file(self, key: str, path: Path) -> StoredObject:
        validate_key(key)
        return await _run(self._put_file, key, path)

    def _put_file(self, key: str, source: Path) -> StoredObject:
        # Open the source first: a missing or unreadable source is the caller's error,
        # not a storage failure, so it propagates as the plain OSError.
        with source.open("rb") as src:
            dest = self._path(key)
            try:
                self._make_parents(dest.parent)
                digest, size = _write_atomically(dest, src)
            except OSError as exc:
                raise StorageError(f"Could not store artifact {key!r}: {exc.strerror}.") from exc
        return StoredObject(key=key, size=size, sha256=digest)

    def _make_parents(self, directory: Path) -> None:
        # Path.mkdir(parents=True) gives intermediate directories the default mode,
        # so create each level with 0o700 ourselves.
        missing: list[Path] = []
        while directory != self._root and not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            d.mkdir(mode=_DIR_MODE, exist_ok=True)

    async def get_file(self, key: str, dest: Path) -> None:
        validate_key(key)
        await _run(self._get_file, key, dest)

    def _get_file(self, key: str, dest: Path) -> None:
        src = self._open(key)
        with src:
            _write_atomically(dest, src)

    def _open(self, key: str) -> IO[bytes]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"Could not read artifact {key!r}: {exc.strerror}.") from exc
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            f.close()
            raise ObjectNotFound(key)
        return f

    def open_stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        validate_chunk_size(chunk_size)
        return self._stream(key, chunk_size)

    async def _stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        f = await _run(self._open, key)
        try:
            while chunk := await _run(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        validate_key(key)
        await _run(self._delete, key)

    def _delete(self, key: str) -> None:
        # Empty parent directories are left in place: removing them could race with a
        # concurrent put_file that has just created them.
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except (NotADirectoryError, IsADirectoryError):
            pass  # no object under this key (a parent is a file, or the key is a directory)
        except OSError as exc:
            raise StorageError(f"Could not delete artifact {key!r}: {exc.strerror}.") from exc

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        validate_key(key)
        return await _run(self._size, key)

    def _size(self, key: str) -> int | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"Could not inspect artifact {key!r}: {exc.strerror}.") from exc
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    async def list_keys(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        return await _run(self._list_keys, prefix)

    def _list_keys(self, prefix: str) -> list[str]:
        # Only walk the directory the prefix pins down: "models/1/ab" -> root/models/1.
        start = self._root.joinpath(*prefix.split("/")[:-1])
        if not start.resolve().is_relative_to(self._root):
            raise ValueError(f"artifact key prefix {prefix!r} resolves outside the store root")
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start, onerror=_raise):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self._root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue  # in-flight temporary files
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                path = Path(dirpath, name)
                # The store never creates symlinks; one found here was planted, so skip it.
                if key.startswith(prefix) and not path.is_symlink() and path.is_file():
                    keys.append(key)
        return sorted(keys)

    async def check(self) -> None:
        await _run(self._check)

    def _check(self) -> None:
        if not self._root.is_dir():
            raise StorageError(f"Artifact store directory {self._root} does not exist.")
        if not os.access(self._root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageError(f"Artifact store directory {self._root} is not writable.")

    async def close(self) -> None:
        return None


def _raise(exc: OSError) -> None:
    # os.walk silently skips unreadable directories; a missing start directory just
    # means no keys, anything else must not be reported as "nothing stored".
    if not isinstance(exc, FileNotFoundError | NotADirectoryError):
        raise StorageError(f"Could not list artifacts: {exc.strerror}.") from exc


async def _run(func: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
    # Not cancellable once started: the thread finishes its write-then-rename, so a
    # cancelled request cannot leave a half-written object or leak a temp file.
    return await anyio.to_thread.run_sync(func, *args)


def _write_atomically(dest: Path, src: IO[bytes]) -> tuple[str, int]:
    """Copy ``src`` to ``dest`` via a temp file and rename; return (sha256 hex, size)."""
    # mkstemp creates the file with mode 0o600 in dest's directory, so os.replace is
    # a same-filesystem rename and readers never see a partial file.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=_TMP_PREFIX)
    tmp = Path(tmp_name)
    try:
        hasher = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_COPY_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(dest.parent)
    return hasher.hexdigest(), size


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable across a crash; best effort (not all filesystems allow it).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
