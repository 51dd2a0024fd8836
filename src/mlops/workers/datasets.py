"""Uploaded data sets: a user without S3 puts a job's input in the platform's storage.

The file is streamed to disk under the limit of model uploads, then stored under
``datasets/<random id>/<cleaned name>``; the name the user gave is kept only for
display and its extension (which says the format).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request

from mlops.errors import BadRequest, Invalid
from mlops.storage import ArtifactStore
from mlops.upload_stream import stream_to_file
from mlops.workers.locations import format_of
from mlops.workers.schemas import DatasetRead

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def dataset_name(filename: str | None) -> str:
    base = (filename or "data").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    cleaned = _UNSAFE.sub("_", base).strip("._-") or "data"
    return cleaned[-120:]


async def receive_dataset(
    request: Request, *, store: ArtifactStore, tmp_dir: Path, max_bytes: int
) -> DatasetRead:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest(
            "upload a data set as multipart/form-data with a 'file' part", code="expected_multipart"
        )
    form = await request.form(max_files=1, max_fields=1, max_part_size=1 << 20)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("the form has no 'file' part with the data set", code="no_file")
        name = dataset_name(upload.filename)
        fmt = format_of(name)
        if fmt is None:
            raise Invalid(
                f"{upload.filename!r}: a data set is a .csv, .parquet (.pq) or .jsonl "
                "(.ndjson) file; the extension says which",
                code="unsupported_dataset_format",
            )
        tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = tmp_dir / f"dataset-{uuid.uuid4().hex}"
        size, sha256 = await stream_to_file(
            upload,
            path,
            max_bytes=max_bytes,
            too_large=f"the data set is larger than the limit of {max_bytes} bytes "
            "(MLOPS_MAX_UPLOAD_BYTES); put it in S3 and give an s3:// input",
        )
    finally:
        await form.close()
    key = f"datasets/{uuid.uuid4().hex}/{name}"
    try:
        await store.put_file(key, path)
    finally:
        path.unlink(missing_ok=True)
    return DatasetRead(uri=key, filename=name, format=fmt, size=size, sha256=sha256)
