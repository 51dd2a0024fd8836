"""Artifact store on S3 or an S3-compatible service (SeaweedFS, MinIO, Ceph RGW)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

import anyio.to_thread
import boto3.session
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError

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

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

MULTIPART_SIZE = 8 << 20
_HASH_CHUNK = 1 << 20
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# The transfer manager wraps ClientError (S3UploadFailedError is a Boto3Error) and
# gives up on repeated broken downloads with its own RetriesExceededError.
_S3_ERRORS = (BotoCoreError, ClientError, Boto3Error, RetriesExceededError)


class S3ArtifactStore(ArtifactStore):
    """Stores each object as ``s3://<bucket>/<prefix>/<key>``.

    Credentials come from the standard AWS chain (``AWS_ACCESS_KEY_ID``/
    ``AWS_SECRET_ACCESS_KEY`` env vars, shared config, instance or pod roles) unless
    ``access_key``/``secret_key`` are given. Path-style addressing and SigV4 are used so
    S3-compatible services work. Files of 8 MiB or more are uploaded and downloaded in
    8 MiB parts. Each object carries its SHA-256 as user metadata ``sha256``.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name must not be empty")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        # A session per store: boto3's default session is shared global state and
        # sessions are not thread-safe, whereas the client itself is.
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_SIZE,
            multipart_chunksize=MULTIPART_SIZE,
            # Each in-flight part is buffered in memory; 4 x 8 MiB bounds that per transfer.
            max_concurrency=4,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    def _full_key(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def _error(self, action: str, key: str | None, exc: Exception) -> StorageError:
        what = f"artifact {key!r}" if key is not None else f"bucket {self._bucket!r}"
        # Only the S3 error code (or exception class), not the full message: it ends up
        # in API responses and logs and can contain endpoint details.
        cause = exc if isinstance(exc, ClientError) else exc.__context__
        if isinstance(cause, ClientError):
            reason = cause.response.get("Error", {}).get("Code", "unknown error")
            # HEAD responses have no body, so the "code" is just the HTTP status.
            reason = {"403": "AccessDenied", "404": "NotFound"}.get(reason, reason)
        else:
            reason = type(exc).__name__
        return StorageError(f"Artifact storage could not {action} {what}: {reason}.")

    async def put_file(self, key: str, path: Path) -> StoredObject:
        full_key = self._full_key(key)
        # The digest must be known before the upload starts (metadata is sent with the
        # first request), so hash in a first pass over the file.
        digest, size = await _run(_hash_file, path)
        upload = functools.partial(
            self._client.upload_file,
            str(path),
            self._bucket,
            full_key,
            ExtraArgs={"Metadata": {"sha256": digest}},
            Config=self._transfer,
        )
        try:
            await _run(upload)
        except _S3_ERRORS as exc:
            raise self._error("store", key, exc) from exc
        return StoredObject(key=key, size=size, sha256=digest)

    async def get_file(self, key: str, dest: Path) -> None:
        full_key = self._full_key(key)
        await _run(self._get_file, key, full_key, dest)

    def _get_file(self, key: str, full_key: str, dest: Path) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    self._client.download_fileobj(
                        self._bucket, full_key, out, Config=self._transfer
                    )
                except ClientError as exc:
                    if _is_not_found(exc):
                        raise ObjectNotFound(key) from exc
                    raise self._error("read", key, exc) from exc
                except _S3_ERRORS as exc:
                    raise self._error("read", key, exc) from exc
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def open_stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        full_key = self._full_key(key)
        validate_chunk_size(chunk_size)
        return self._stream(key, full_key, chunk_size)

    async def _stream(self, key: str, full_key: str, chunk_size: int) -> AsyncIterator[bytes]:
        get = functools.partial(self._client.get_object, Bucket=self._bucket, Key=full_key)
        try:
            response: GetObjectOutputTypeDef = await _run(get)
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(key) from exc
            raise self._error("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from exc
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await _run(body.read, chunk_size)
                except BotoCoreError as exc:
                    raise self._error("read", key, exc) from exc
                if not chunk:
                    break
                yield chunk
        finally:
            # Also on early exit: returns (or drops) the pooled HTTP connection.
            body.close()

    async def delete(self, key: str) -> None:
        full_key = self._full_key(key)
        # S3 DeleteObject succeeds for missing keys, which makes this idempotent.
        delete = functools.partial(self._client.delete_object, Bucket=self._bucket, Key=full_key)
        try:
            await _run(delete)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("delete", key, exc) from exc

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        full_key = self._full_key(key)
        head = functools.partial(self._client.head_object, Bucket=self._bucket, Key=full_key)
        try:
            response = await _run(head)
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise self._error("inspect", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("inspect", key, exc) from exc
        return response["ContentLength"]

    async def list_keys(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        try:
            return await _run(self._list_keys, prefix)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("list", None, exc) from exc

    def _list_keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self._prefix)
        keys = [
            obj["Key"][strip:]
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix)
            for obj in page.get("Contents", [])
        ]
        return sorted(keys)

    async def check(self) -> None:
        head = functools.partial(self._client.head_bucket, Bucket=self._bucket)
        try:
            await _run(head)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchBucket"}:
                msg = f"Artifact storage bucket {self._bucket!r} does not exist."
                raise StorageError(msg) from exc
            if code in {"403", "AccessDenied"}:
                msg = f"Artifact storage bucket {self._bucket!r} is not accessible (access denied)."
                raise StorageError(msg) from exc
            raise self._error("reach", None, exc) from exc
        except BotoCoreError as exc:
            raise self._error("reach", None, exc) from exc

    async def close(self) -> None:
        self._client.close()


def _is_not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES


def _hash_file(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


async def _run(func: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
    # Not cancellable once started: boto3 calls cannot be interrupted, and an
    # abandoned thread would keep uploading or writing after the caller gave up.
    return await anyio.to_thread.run_sync(func, *args)
