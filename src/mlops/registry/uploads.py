"""Receiving a model upload: multipart form to a local temporary file.

The file part is copied to a file under the data dir in chunks while its sha256
and size are computed, so an upload is never held whole in memory, and a file
over the limit is refused (413) as soon as it crosses it.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request

from mlops.errors import BadRequest
from mlops.upload_stream import stream_to_file

# Keep the user's file name only for display and extension sniffing.
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    filename: str
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def safe_filename(name: str | None) -> str:
    base = os.path.basename(name or "model")
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "model"
    return cleaned[-200:]


async def save_stream(upload: UploadFile, dest_dir: Path, *, max_bytes: int) -> ReceivedFile:
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = dest_dir / f"upload-{uuid.uuid4().hex}"
    size, sha256 = await stream_to_file(
        upload,
        path,
        max_bytes=max_bytes,
        too_large=f"model file is larger than the limit of {max_bytes} bytes "
        "(MLOPS_MAX_UPLOAD_BYTES)",
    )
    return ReceivedFile(path, safe_filename(upload.filename), size, sha256)


async def receive_upload(
    request: Request, dest_dir: Path, *, max_bytes: int
) -> tuple[ReceivedFile, str | None, ReceivedFile | None]:
    """(the file, the raw ``metadata`` field, the optional ``reference`` data set) of a
    multipart upload; the two files share the size limit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadRequest(
            "upload a model as multipart/form-data with a 'file' part "
            "(and an optional JSON 'metadata' part)",
            code="expected_multipart",
        )
    form = await request.form(max_files=2, max_fields=2, max_part_size=1 << 20)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("the form has no 'file' part with the model file", code="no_file")
        metadata = form.get("metadata")
        if metadata is not None and not isinstance(metadata, str):
            raise BadRequest("'metadata' must be a JSON text field", code="invalid_metadata")
        reference_part = form.get("reference")
        if reference_part is not None and not isinstance(reference_part, UploadFile):
            raise BadRequest("'reference' must be a file (a data set)", code="invalid_reference")
        received = await save_stream(upload, dest_dir, max_bytes=max_bytes)
        reference = None
        if reference_part is not None:
            try:
                reference = await save_stream(
                    reference_part, dest_dir, max_bytes=max_bytes - received.size
                )
            except BaseException:
                received.discard()
                raise
            # The data set's own name: its extension says its format.
            reference = replace(reference, filename=reference_part.filename or "reference")
        return received, metadata, reference
    finally:
        await form.close()
