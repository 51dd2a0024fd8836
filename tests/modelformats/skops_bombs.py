"""Crafted ``.skops`` archives: a real model whose first array is swapped for a zip
bomb, or for a ``.npy`` header that declares more data than it holds."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

CHUNK = 1 << 20


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """A version 1.0 ``.npy`` header, as numpy writes it."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0, dtype=dtype))
    header["shape"] = shape
    stream = _Buffer()
    np.lib.format.write_array_header_1_0(stream, header)
    return bytes(stream.data)


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk


def first_array(source: Path) -> str:
    """The name of the first ``.npy`` member: an array the model's schema refers to."""
    with zipfile.ZipFile(source) as archive:
        return next(n for n in archive.namelist() if n.endswith(".npy"))


def replace_member(source: Path, dest: Path, name: str, header: bytes, zero_bytes: int) -> None:
    """Copy ``source`` to ``dest`` with member ``name`` made of ``header`` and then
    ``zero_bytes`` zeros, deflated (zeros deflate about a thousandfold)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w") as out:
        for info in src.infolist():
            if info.filename != name:
                out.writestr(info, src.read(info))
                continue
            member = zipfile.ZipInfo(name)
            member.compress_type = zipfile.ZIP_DEFLATED
            with out.open(member, "w", force_zip64=True) as stream:
                stream.write(header)
                left = zero_bytes
                zeros = bytes(CHUNK)
                while left > 0:
                    stream.write(zeros[: min(CHUNK, left)])
                    left -= CHUNK
