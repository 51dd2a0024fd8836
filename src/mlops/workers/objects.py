"""Reading and writing a job's files wherever its locations point.

Inputs are fetched to the worker's local disk once per job (a local artifact store is
read in place), so shards can read their own rows or bytes without reading the
rest. Writes are atomic in both stores: a reader sees the whole object or none.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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


def _storage_error(action: str, location: Location, exc: Exception) -> StorageError:
    cause = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    reason = cause or type(exc).__name__
    return StorageError(f"could not {action} {location.uri!r}: {reason}")


async def _run(func: Any, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(func, *args)
