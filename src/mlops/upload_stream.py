"""Stream a multipart file part to disk with a size limit, hashing it on the way.

Model uploads and data sets for batch jobs share this, so both refuse an oversized or
empty file the same way and leave no partial file behind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.datastructures import UploadFile

from mlops.errors import BadRequest, PayloadTooLarge

CHUNK = 1 << 20


async def stream_to_file(
    upload: UploadFile, path: Path, *, max_bytes: int, too_large: str
) -> tuple[int, str]:
    """Write ``upload`` to ``path``; (size, sha256 hex). ``too_large`` is the 413 message.
    On any failure, an empty file included, ``path`` is removed before raising."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(too_large, code="file_too_large")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise BadRequest("the uploaded file is empty", code="empty_file")
    return size, digest.hexdigest()
