"""Reading and writing a job's files wherever its locations point.

Inputs are fetched to the worker's local disk once per job (a local artifact store is
read in place), so shards can read their own rows or bytes without reading the
rest. Writes are atomic in both stores: a reader sees the whole object or none.

boto3 is imported on the first ``s3://`` access, not with this module: the API server
and the model server import it at start and rarely, if ever, need it (~0.6 s).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from mlops.config import Settings
from mlops.errors import NotFound
from mlops.storage import ArtifactStore, LocalArtifactStore, StorageError
from mlops.workers.locations import Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ObjectAccess:
    def __init__(self, store: ArtifactStore, settings: Settings) -> None:
        self.store = store
        self._settings = settings
        self._s3: S3Client | None = None

    def _client(self) -> S3Client:
        if self._s3 is None:
            import boto3.session
            from botocore.config import Config

            session = boto3.session.Session(region_name=self._settings.s3_region)
            config = Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
            )
            self._s3 = session.client(
                "s3", endpoint_url=self._settings.s3_endpoint_url, config=config
            )
        return self._s3

    def local_path(self, location: Location) -> Path | None:
        """The file itself when the location is in a local store (read in place)."""
        if location.scheme != "platform" or not isinstance(self.store, LocalArtifactStore):
            return None
        root = self.store.root
        path = (root / location.key).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"{location.key!r} resolves outside the store")
        return path

    def local_target(self, location: Location) -> Path | None:
        """Where a platform location's file goes in a local store, its directories made
        (0o700, like the store's own), or None (S3, or an S3 artifact store). A step then
        writes a temp file beside it and ``publish_local``s it: the output is written
        once, not written and then copied by ``put``. Blocking: call from a thread."""
        target = self.local_path(location)
        if target is None:
            return None
        assert isinstance(self.store, LocalArtifactStore)  # as local_path checked
        root = self.store.root
        missing: list[Path] = []
        directory = target.parent
        while directory != root and not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for level in reversed(missing):
            level.mkdir(mode=0o700, exist_ok=True)
        return target

    async def fetch(self, location: Location, dest: Path) -> Path:
        """A local file with the object's bytes: in place, or downloaded to ``dest``."""
        local = self.local_path(location)
        if local is not None:
            if not local.is_file():
                raise NotFound(f"{location.uri!r} does not exist", code="input_not_found")
            return local
        if location.scheme == "platform":
            await self.store.get_file(location.key, dest)
            return dest
        await _run(self._s3_download, location, dest)
        return dest

    def _s3_download(self, location: Location, dest: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                self._client().download_fileobj(str(location.bucket), location.key, out)
            os.replace(tmp, dest)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise NotFound(f"{location.uri!r} does not exist", code="input_not_found") from None
            raise _storage_error("read", location, exc) from None
        except BotoCoreError as exc:
            raise _storage_error("read", location, exc) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    async def put(self, location: Location, path: Path) -> None:
        if location.scheme == "platform":
            await self.store.put_file(location.key, path)
            return
        upload = functools.partial(
            self._client().upload_file, str(path), str(location.bucket), location.key
        )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await _run(upload)
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("write", location, exc) from None

    async def size(self, location: Location) -> int | None:
        if location.scheme == "platform":
            return await self.store.size(location.key)
        head = functools.partial(
            self._client().head_object, Bucket=str(location.bucket), Key=location.key
        )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: Any = await _run(head)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise _storage_error("inspect", location, exc) from None
        except BotoCoreError as exc:
            raise _storage_error("inspect", location, exc) from None
        return int(response["ContentLength"])

    async def delete_prefix(self, prefix: str) -> None:
        """Delete every platform object under ``prefix`` (a job's shard outputs)."""
        for key in await self.store.list_keys(prefix):
            await self.store.delete(key)

    async def close(self) -> None:
        if self._s3 is not None:
            self._s3.close()


def temp_beside(target: Path, token: str) -> Path:
    """A temp name in the target's directory (same filesystem, so the rename is atomic);
    hidden from the store's listings, like the store's own temp files."""
    return target.with_name(f".tmp-{target.name}-{token}")


def publish_local(temp: Path, target: Path) -> None:
    """Make ``temp`` the file ``target``, durably: its bytes reach the disk (fsync), then
    the rename, then the directory entry (fsync of the directory). Both syncs come
    before the job's completion is committed: a job recorded as succeeded whose output
    a power cut lost, or left half-written, would break the output guarantee. Blocking."""
    try:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    with contextlib.suppress(OSError):  # not every filesystem syncs a directory
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _storage_error(action: str, location: Location, exc: Exception) -> StorageError:
    from botocore.exceptions import ClientError

    cause = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    reason = cause or type(exc).__name__
    return StorageError(f"could not {action} {location.uri!r}: {reason}")


async def _run(func: Any, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(func, *args)
