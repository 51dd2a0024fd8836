"""Sizes inside a ``.skops`` archive, checked before skops unpacks anything.

skops reads every member of the zip into memory (even to list its types), and
numpy then allocates each array from the shape its ``.npy`` header declares.
A small upload that deflates to gigabytes (a zip bomb), or a header declaring
more data than its member holds, would take the server's memory.
``check_archive`` reads only the zip directory and the ``.npy`` headers.

The budget follows the file's size: skops saves uncompressed by default, so a
real model unpacks to about its own size (which ``MLOPS_MAX_UPLOAD_BYTES``
bounds); a compressed one may unpack to ``MAX_COMPRESSION_RATIO`` times it, but
never past ``MAX_EXPANDED_BYTES`` unless the file itself is that large; any
archive may unpack to ``MIN_UNPACKED_BUDGET``.
"""

from __future__ import annotations

import math
import zipfile
from typing import IO

import numpy as np

from mlops.errors import Invalid

MAX_COMPRESSION_RATIO = 20
MIN_UNPACKED_BUDGET = 64 * 1024**2
MAX_EXPANDED_BYTES = 4 * 1024**3
# numpy's own default bound on a .npy header; real headers are ~100 bytes.
MAX_NPY_HEADER_BYTES = 10_000


def unpacked_budget(file_size: int) -> int:
    """Most bytes an archive of ``file_size`` bytes may unpack to."""
    expanded = min(MAX_COMPRESSION_RATIO * file_size, max(file_size, MAX_EXPANDED_BYTES))
    return max(MIN_UNPACKED_BUDGET, expanded)


def check_archive(archive: zipfile.ZipFile, file_size: int) -> None:
    """Raise ``Invalid`` (``model_too_large`` or ``model_invalid``) if unpacking
    ``archive`` could take more memory than its budget allows."""
    budget = _Budget(unpacked_budget(file_size), file_size)
    for info in archive.infolist():
        budget.take(info.file_size, info.filename)
        _check_member(archive, info, info.filename, budget.limit)
        # Nested archives (scipy sparse matrices are .npz) unpack once more.
        if info.filename.endswith(".npz"):
            with archive.open(info) as stream, _open_nested(info.filename, stream) as nested:
                for inner in nested.infolist():
                    name = f"{info.filename}/{inner.filename}"
                    budget.take(inner.file_size, name)
                    _check_member(nested, inner, name, budget.limit)


class _Budget:
    def __init__(self, limit: int, file_size: int) -> None:
        self.limit = limit
        self.file_size = file_size
        self.used = 0

    def take(self, size: int, name: str) -> None:
        self.used += size
        if self.used > self.limit:
            raise _too_large(
                f"its contents unpack to more than {self.limit} bytes (the limit for a "
                f"{self.file_size}-byte file); {name} alone unpacks to {size}"
            )


def _open_nested(name: str, stream: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise _invalid(f"{name} is not a valid .npz archive") from exc


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int) -> None:
    if not info.filename.endswith(".npy"):
        return
    with archive.open(info) as stream:
        try:
            shape, dtype, header_end = _npy_header(stream)
        except ValueError as exc:
            raise _invalid(f"{name} has a malformed .npy header ({exc})") from exc
    # Exact integers: a crafted shape must not overflow into a small product.
    declared = math.prod(shape) * dtype.itemsize
    held = info.file_size - header_end
    if declared > budget:
        raise _too_large(
            f"{name} declares {declared} bytes of array data, over the limit of {budget}"
        )
    if declared > held:
        raise _invalid(f"{name} declares {declared} bytes of array data but holds only {held}")


def _npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[np.generic], int]:
    """(shape, dtype, offset of the data) read from the start of a ``.npy`` stream."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        read_header = np.lib.format.read_array_header_1_0
    elif version == (2, 0):
        read_header = np.lib.format.read_array_header_2_0
    else:
        raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
    shape, _, dtype = read_header(stream, max_header_size=MAX_NPY_HEADER_BYTES)
    return tuple(int(n) for n in shape), dtype, stream.tell()


def _too_large(reason: str) -> Invalid:
    return Invalid(
        f"invalid .skops model: {reason}. A model saved with skops' default (no "
        "compression) unpacks to its own size; compressed, it may unpack to at most "
        f"{MAX_COMPRESSION_RATIO} times its size, and to at most {MAX_EXPANDED_BYTES} bytes "
        f"unless it is that large itself (always to {MIN_UNPACKED_BUDGET} bytes).",
        code="model_too_large",
    )


def _invalid(reason: str) -> Invalid:
    return Invalid(f"invalid .skops model: {reason}", code="model_invalid")
