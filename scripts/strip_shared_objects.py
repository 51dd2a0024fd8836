"""Strip the symbol tables and debug sections of shared objects, keeping them loadable.

`strip --strip-unneeded` on a library that auditwheel's patchelf rewrote can leave a
LOAD segment whose file offset and address disagree modulo the page size, which the
dynamic loader refuses ("ELF load command address/offset not page-aligned"). Each
object is stripped into a copy; the copy replaces it only when every LOAD segment of
the copy is still page-congruent. Usage: strip_shared_objects.py DIR...
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

PAGE = 65536  # the largest page size a Linux kernel uses (arm64); 4096 divides it
PT_LOAD = 1


def _loadable(path: Path) -> bool:
    """Every LOAD segment's offset and address agree modulo the page size (64-bit ELF)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, _, _, p_align = struct.unpack_from(
            endian + "IIQQQQQQ", data, phoff + i * phentsize
        )
        align = max(p_align, 1)
        if p_type == PT_LOAD and (p_offset - p_vaddr) % min(align, PAGE) != 0:
            return False
    return True


def strip_tree(root: Path) -> tuple[int, int, int]:
    """Strip every ELF shared object below root; (stripped, kept as they were, bytes saved)."""
    stripped = kept = saved = 0
    for path in sorted(root.rglob("*.so*")):
        if path.is_symlink() or not path.is_file() or path.read_bytes()[:4] != b"\x7fELF":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / path.name
            shutil.copy2(path, copy)
            done = subprocess.run(["strip", "--strip-unneeded", str(copy)], capture_output=True)
            if done.returncode != 0 or not _loadable(copy):
                kept += 1
                continue
            saved += path.stat().st_size - copy.stat().st_size
            os.replace(copy, path)
            stripped += 1
    return stripped, kept, saved


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        s, k, b = strip_tree(Path(arg))
        print(f"{arg}: stripped {s} shared objects ({b / 1e6:.0f} MB), left {k} as they were")
