"""A reference data set given with a model upload: ``metadata.reference_uri`` or a
``reference`` file part. Checked, and a file stored as a data set, before the version
is registered (a bad reference refuses the upload, leaving nothing behind); attached
to the version once it exists."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Self

from mlops.context import PlatformContext
from mlops.errors import Invalid, NotFound
from mlops.registry.models import ModelVersion, RegisteredModel
from mlops.registry.uploads import ReceivedFile
from mlops.workers.datasets import dataset_name
from mlops.workers.drift.service import set_reference
from mlops.workers.locations import format_of, parse_location
from mlops.workers.objects import ObjectAccess


class UploadReference:
    def __init__(self, ctx: PlatformContext, file: ReceivedFile | None, uri: str | None) -> None:
        self._ctx = ctx
        self._file = file
        self._uri = uri
        self._stored: str | None = None
        self._objects = ObjectAccess(ctx.store, ctx.settings)

    async def __aenter__(self) -> Self:
        if self._file is not None and self._uri is not None:
            raise Invalid(
                "give a 'reference' file or metadata.reference_uri, not both",
                code="invalid_reference",
            )
        if self._uri is not None:
            location = parse_location(
                self._uri, allowed_buckets=self._ctx.settings.job_s3_bucket_list, role="input"
            )
            if format_of(self._uri) is None:
                raise Invalid(
                    f"reference {self._uri!r}: a .csv, .parquet or .jsonl data set",
                    code="unknown_format",
                )
            if await self._objects.size(location) is None:
                raise NotFound(f"reference {self._uri!r} does not exist", code="input_not_found")
        if self._file is not None:
            name = dataset_name(self._file.filename)
            if format_of(name) is None:
                raise Invalid(
                    f"reference {self._file.filename!r}: a .csv, .parquet or .jsonl data set",
                    code="unsupported_dataset_format",
                )
            key = f"datasets/{uuid.uuid4().hex}/{name}"
            await self._ctx.store.put_file(key, self._file.path)
            self._stored = self._uri = key
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and self._stored is not None:
                await self._ctx.store.delete(self._stored)  # the version never came to be
        finally:
            await self._objects.close()

    async def attach(self, *, model: RegisteredModel, version: ModelVersion, actor: str) -> None:
        if self._uri is None:
            return
        async with self._ctx.sessions() as session:
            row = await session.get_one(ModelVersion, version.id)
            await set_reference(
                session=session,
                objects=self._objects,
                buckets=self._ctx.settings.job_s3_bucket_list,
                actor=actor,
                model=model,
                version=row,
                uri=self._uri,
                fmt=None,
            )
            await session.commit()
