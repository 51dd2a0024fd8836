"""Open Inference Protocol JSON tensors: what numpy would silently change is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlops.errors import Invalid
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
    empty = decode_input(_tensor("INT64", [0, 5], []), None)
    assert empty.shape == (0, 5) and empty.dtype == np.int64
    # The caller found no true/false in the request's text: no walk, same answer.
    fast = decode_input(_tensor("FP64", [3], [1, 2, 3]), None, may_hold_booleans=False)
    assert fast.tolist() == [1.0, 2.0, 3.0]
