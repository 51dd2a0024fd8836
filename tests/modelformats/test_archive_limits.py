""".skops archives are sized from their zip directory and .npy headers before
skops unpacks anything: a zip bomb or an oversized header is refused cheaply."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from mlops.errors import Invalid
from mlops.modelformats import inspect_model
from mlops.modelformats.skops_archive import MIN_UNPACKED_BUDGET, unpacked_budget

from .conftest import Data
from .skops_bombs import first_array, npy_header, replace_member

# Twice the budget of any small file: what the bomb would have cost in memory.
BOMB_BYTES = 2 * MIN_UNPACKED_BUDGET


@pytest.fixture()
def model_file(data: Data, tmp_path: Path) -> Path:
    path = tmp_path / "model.skops"
    sio.dump(LogisticRegression().fit(data.x, data.binary), path)
    return path


def _refused(path: Path, code: str) -> str:
    with pytest.raises(Invalid) as caught:
        inspect_model(path, "model.skops")
    assert caught.value.code == code, caught.value.message
    assert caught.value.status_code == 422
    return caught.value.message


def test_zip_bomb_is_refused_without_unpacking_it(model_file: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.skops"
    member = first_array(model_file)
    replace_member(model_file, bomb, member, npy_header((BOMB_BYTES // 8,)), BOMB_BYTES)
    assert bomb.stat().st_size < BOMB_BYTES // 100  # a small upload...
    tracemalloc.start()
    try:
        message = _refused(bomb, "model_too_large")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # ...refused naming the member and the limit, without holding its contents.
    assert member in message
    assert str(MIN_UNPACKED_BUDGET) in message
    assert peak < MIN_UNPACKED_BUDGET // 4


@pytest.mark.parametrize(
    "shape",
    [
        (2**40,),
        # np.prod of this overflows int64 to 0; the check multiplies exact integers.
        (2**32, 2**32),
    ],
)
def test_npy_header_declaring_a_huge_array_is_refused(
    model_file: Path, tmp_path: Path, shape: tuple[int, ...]
) -> None:
    crafted = tmp_path / "huge.skops"
    member = first_array(model_file)
    replace_member(model_file, crafted, member, npy_header(shape), 8)
    message = _refused(crafted, "model_too_large")
    assert member in message
    assert "declares" in message
    assert str(unpacked_budget(crafted.stat().st_size)) in message


def test_npy_header_declaring_more_than_the_member_holds_is_invalid(
    model_file: Path, tmp_path: Path
) -> None:
    crafted = tmp_path / "short.skops"
    member = first_array(model_file)
    replace_member(model_file, crafted, member, npy_header((1000,)), 8)
    message = _refused(crafted, "model_invalid")
    assert f"{member} declares 8000 bytes of array data but holds only 8" in message


def test_malformed_npy_header_is_invalid(model_file: Path, tmp_path: Path) -> None:
    crafted = tmp_path / "garbled.skops"
    member = first_array(model_file)
    replace_member(model_file, crafted, member, b"\x93NUMPY\x01\x00\x10\x00{not a header}\n", 8)
    assert f"{member} has a malformed .npy header" in _refused(crafted, "model_invalid")


def test_compressed_model_within_the_ratio_is_accepted(data: Data, tmp_path: Path) -> None:
    path = tmp_path / "deflated.skops"
    sio.dump(LogisticRegression().fit(data.x, data.binary), path, compression=zipfile.ZIP_DEFLATED)
    info = inspect_model(path, "deflated.skops")
    assert info.format == "skops"


def test_budget_follows_the_file_size() -> None:
    assert unpacked_budget(1) == MIN_UNPACKED_BUDGET
    assert unpacked_budget(10 << 20) == 200 << 20  # compressed: 20 times the file
    # Never past 4 GiB by decompression, but an uncompressed large model still fits.
    assert unpacked_budget(1 << 30) == 4 << 30
    assert unpacked_budget(6 << 30) == 6 << 30
