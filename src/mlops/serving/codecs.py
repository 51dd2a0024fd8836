"""Open Inference Protocol tensors: JSON ``data`` and the binary tensor data extension.

Binary extension: the body starts with a JSON header of
``Inference-Header-Content-Length`` bytes; each tensor whose parameters carry
``binary_data_size`` follows, in order, as raw little-endian values (BYTES
elements are each prefixed with a 4-byte little-endian length).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from mlops.errors import BadRequest, Invalid, PayloadTooLarge

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "OUS":
        return "BYTES"
    for name, dtype in DATATYPES.items():
        if array.dtype == dtype:
            return name
    raise ValueError(f"no V2 datatype for {array.dtype}")


def _shape(name: str, raw: Any, max_rows: int | None) -> tuple[tuple[int, ...], int]:
    """(shape, element count). The count is an exact Python integer: ``np.prod`` wraps
    around (``[2**32, 2**32]`` is 0 in int64), which let a huge shape pass as empty."""
    if not isinstance(raw, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
    ):
        raise Invalid(
            f"input {name!r}: 'shape' must be a list of non-negative integers",
            code="invalid_input",
        )
    if len(raw) > 8:
        raise Invalid(f"input {name!r}: tensors have at most 8 dimensions", code="invalid_input")
    shape = tuple(raw)
    count = math.prod(shape)
    if count == 0:
        raise Invalid(
            f"input {name!r}: shape {list(shape)} holds no values; send at least one row",
            code="invalid_input",
        )
    if max_rows is not None and shape and shape[0] > max_rows:
        raise PayloadTooLarge(
            f"input {name!r}: {shape[0]} rows is more than the limit of {max_rows} per "
            "request (MLOPS_MAX_PREDICT_ROWS); split the request",
            code="too_many_rows",
        )
    return shape, count


# JSON values of each kind that a datatype of each kind takes without losing anything.
_TAKES = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
_FOUND = {"b": "true/false", "f": "fractional numbers", "U": "strings", "O": "mixed values"}


def _holds_boolean(data: Any) -> bool:
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list):
            pending.extend(item)
    return False


def _json_values(name: str, datatype: str, data: Any, may_hold_booleans: bool) -> np.ndarray:
    """``data`` as ``datatype``, refusing what numpy would silently change: 5.5 or
    ``true`` in an INT64 tensor, 300 in an INT8 one, ``"1"`` anywhere."""
    dtype = DATATYPES[datatype]
    not_all = f"input {name!r}: 'data' is not all {datatype}"
    try:
        natural = np.asarray(data)
    except (ValueError, TypeError):
        raise Invalid(not_all, code="invalid_input") from None
    if natural.size == 0:
        return natural.astype(dtype)
    if natural.dtype.kind not in _TAKES[dtype.kind]:
        found = _FOUND.get(natural.dtype.kind, "other values")
        raise Invalid(f"{not_all}: it holds {found}", code="invalid_input")
    if dtype.kind != "b" and may_hold_booleans and _holds_boolean(data):
        raise Invalid(f"{not_all}: true/false are not numbers", code="invalid_input")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if natural.min() < info.min or natural.max() > info.max:
            raise Invalid(
                f"{not_all}: values must lie in {info.min}..{info.max}", code="invalid_input"
            )
    return natural.astype(dtype)


def decode_input(
    tensor: Any,
    binary: memoryview | None,
    *,
    may_hold_booleans: bool = True,
    max_rows: int | None = None,
) -> np.ndarray:
    """One request input as an array (numeric datatypes only: models take numbers).

    The shape must be non-empty, hold exactly the values sent, and have at most
    ``max_rows`` rows (its first dimension; 413 beyond).
    ``may_hold_booleans=False``: the request's JSON text has no ``true``/``false``, so the
    walk that looks for them in a numeric tensor's ``data`` is skipped."""
    if not isinstance(tensor, dict):
        raise Invalid("each input must be an object", code="invalid_input")
    name = tensor.get("name", "?")
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise Invalid(
            f"input {name!r}: datatype {datatype!r} is not a numeric V2 datatype "
            f"({', '.join(DATATYPES)})",
            code="invalid_input",
        )
    shape, count = _shape(name, tensor.get("shape"), max_rows)
    dtype = DATATYPES[datatype]
    if binary is not None:
        if len(binary) != count * dtype.itemsize:
            raise Invalid(
                f"input {name!r}: {len(binary)} bytes do not hold shape {list(shape)} "
                f"of {datatype}",
                code="invalid_input",
            )
        return np.frombuffer(binary, dtype=dtype).reshape(shape)
    data = tensor.get("data")
    if data is None:
        raise Invalid(f"input {name!r} has neither 'data' nor binary data", code="invalid_input")
    array = _json_values(name, datatype, data, may_hold_booleans)
    if array.size != count:
        raise Invalid(
            f"input {name!r}: {array.size} values do not fill shape {list(shape)}",
            code="invalid_input",
        )
    return array.reshape(shape)


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    if header_length is None:
        return body, None
    try:
        length = int(header_length)
    except ValueError:
        raise BadRequest("Inference-Header-Content-Length is not a number") from None
    if not 0 < length <= len(body):
        raise BadRequest("Inference-Header-Content-Length is outside the body")
    return body[:length], memoryview(body)[length:]


def take_binary(rest: memoryview | None, offset: int, size: Any) -> tuple[memoryview, int]:
    if rest is None or not isinstance(size, int) or size < 0 or offset + size > len(rest):
        raise Invalid("binary_data_size does not match the binary data sent", code="invalid_input")
    return rest[offset : offset + size], offset + size


def encode_output(array: np.ndarray) -> bytes:
    if array.dtype.kind in "OUS":
        parts = []
        for item in array.reshape(-1).tolist():
            data = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def json_data(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if flat.dtype.kind in "OUS":
        return [str(v) for v in flat.tolist()]
    values: list[Any] = flat.tolist()
    return values
