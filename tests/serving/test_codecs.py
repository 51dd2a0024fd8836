"""Open Inference Protocol JSON tensors: what numpy would silently change is refused."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from mlops.errors import Invalid, PayloadTooLarge
from mlops.serving.codecs import decode_input


def _tensor(datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": "x", "datatype": datatype, "shape": shape, "data": data}


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("INT64", [2], [1, 5.5], "not all INT64: it holds fractional numbers"),
        ("FP32", [2], [1, True], "not all FP32: true/false are not numbers"),
        ("FP32", [2, 2], [[1, 2], [3, False]], "true/false are not numbers"),
        ("INT8", [1], [300], "values must lie in -128..127"),
        ("UINT8", [1], [-1], "values must lie in 0..255"),
        ("FP32", [1], ["1"], "it holds strings"),
        ("FP64", [1], [2**70], "it holds mixed values"),
        ("BOOL", [2], [1, 0], "not all BOOL"),
        ("FP32", [2, 2], [[1, 2], [3]], "not all FP32"),
        ("FP32", [1, 5], [1, 2, 3, 4], "4 values do not fill shape [1, 5]"),
    ],
)
def test_json_data_that_is_not_its_datatype_is_refused(
    datatype: str, shape: list[int], data: Any, message: str
) -> None:
    with pytest.raises(Invalid, match=message.replace("[", r"\[").replace(".", r"\.")):
        decode_input(_tensor(datatype, shape, data), None)


def test_json_data_that_fits_keeps_its_values() -> None:
    ints = decode_input(_tensor("FP32", [2, 2], [[1, 2], [3, 4.5]]), None)
    assert ints.dtype == np.float32 and ints.tolist() == [[1, 2], [3, 4.5]]
    flags = decode_input(_tensor("BOOL", [2], [True, False]), None)
    assert flags.dtype == np.bool_ and flags.tolist() == [True, False]
    small = decode_input(_tensor("INT8", [2], [-128, 127]), None)
    assert small.dtype == np.int8 and small.tolist() == [-128, 127]
    # The caller found no true/false in the request's text: no walk, same answer.
    fast = decode_input(_tensor("FP64", [3], [1, 2, 3]), None, may_hold_booleans=False)
    assert fast.tolist() == [1.0, 2.0, 3.0]


HUGE = 2**32  # [HUGE, HUGE] holds 2**64 values: np.prod wrapped that around to 0


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ([3, HUGE], [], "0 values do not fill shape [3, 4294967296]"),
        ([1, HUGE, HUGE], [], "0 values do not fill shape [1, 4294967296, 4294967296]"),
        ([1, HUGE, HUGE], [1.0], "1 values do not fill shape [1, 4294967296, 4294967296]"),
        ([1, 2**70], [], "0 values do not fill shape [1, 1180591620717411303424]"),
        ([0, 5], [], "shape [0, 5] holds no values"),
        ([2**70, 0], [], "holds no values"),
        ([1, -5], [1.0], "'shape' must be a list of non-negative integers"),
        ([True, 5], [1.0] * 5, "'shape' must be a list of non-negative integers"),
        ([1.0, 5], [1.0] * 5, "'shape' must be a list of non-negative integers"),
        ("1,5", [1.0] * 5, "'shape' must be a list of non-negative integers"),
        ([1] * 9, [1.0], "at most 8 dimensions"),
    ],
)
def test_shapes_that_do_not_hold_the_data_are_refused(shape: Any, data: Any, message: str) -> None:
    with pytest.raises(Invalid, match=re.escape(message)):
        decode_input(_tensor("FP32", shape, data), None, max_rows=100)


def test_binary_data_is_held_to_the_exact_shape() -> None:
    tensor = {"name": "x", "datatype": "FP32", "shape": [1, HUGE, HUGE]}
    with pytest.raises(Invalid, match=re.escape("0 bytes do not hold shape")):
        decode_input(tensor, memoryview(b""), max_rows=100)
    four = np.arange(4, dtype="<f4")
    decoded = decode_input({**tensor, "shape": [2, 2]}, memoryview(four.tobytes()))
    assert decoded.tolist() == [[0, 1], [2, 3]]


def test_more_rows_than_the_limit_is_413_before_reading_the_data() -> None:
    with pytest.raises(PayloadTooLarge, match="4294967296 rows is more than the limit of 100"):
        decode_input(_tensor("FP32", [HUGE, HUGE], []), None, max_rows=100)
    with pytest.raises(PayloadTooLarge, match="101 rows"):
        decode_input(_tensor("FP32", [101, 1], [0.0] * 101), None, max_rows=100)
    assert decode_input(_tensor("FP32", [100, 1], [0.0] * 100), None, max_rows=100).shape == (
        100,
        1,
    )
