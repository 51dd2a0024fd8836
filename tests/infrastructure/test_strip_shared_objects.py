"""scripts/strip_shared_objects.py, which the Containerfile runs on the environment:
it strips what stays loadable and leaves alone what `strip` would break (a library
that auditwheel's patchelf rewrote: the loader then refuses it as "ELF load command
address/offset not page-aligned"). Real wheels' libraries, the real `strip`."""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import numpy
import pytest
import yaml

from tests.infrastructure.bundle import ROOT
from tests.system_tools import system_tool


def _script() -> ModuleType:
    path = ROOT / "scripts" / "strip_shared_objects.py"
    spec = importlib.util.spec_from_file_location("strip_shared_objects", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one(pattern: str, folder: Path) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_strips_what_stays_loadable_and_leaves_what_strip_breaks(tmp_path: Path) -> None:
    strip = system_tool("strip")
    script = _script()
    site = Path(numpy.__file__).parent.parent
    # numpy's OpenBLAS, rewritten by patchelf: the one `strip` breaks.
    blas = _one("libscipy_openblas64_*.so", site / "numpy.libs")
    plain = _one("_yaml.cpython-*.so", Path(yaml.__file__).parent)
    work = tmp_path / "lib"
    work.mkdir()
    for source in (blas, plain):
        shutil.copy2(source, work / source.name)
    (work / "notes.so.txt").write_text("not an ELF file")

    # The hazard is real: a plain strip of this library makes it unloadable.
    broken = tmp_path / "broken.so"
    shutil.copy2(blas, broken)
    subprocess.run([strip, "--strip-unneeded", str(broken)], check=True)
    assert not script._loadable(broken)
    with pytest.raises(OSError, match="not page-aligned"):
        ctypes.CDLL(str(broken))

    stripped, kept, saved = script.strip_tree(work)
    assert (stripped, kept) == (1, 1)
    assert (work / blas.name).read_bytes() == blas.read_bytes()
    assert (work / plain.name).stat().st_size < plain.stat().st_size
    assert saved == plain.stat().st_size - (work / plain.name).stat().st_size > 0
    assert (work / "notes.so.txt").read_text() == "not an ELF file"
    for name in (blas.name, plain.name):
        assert script._loadable(work / name)
        ctypes.CDLL(str(work / name))
