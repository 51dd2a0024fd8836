"""Turning a request's rows into the array a model takes, or a 422 that says why.

The fast path is one ``numpy`` conversion; only when it fails is the input walked
to find the first bad row, so the message can name it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlops.errors import Invalid, PayloadTooLarge
from mlops.modelformats import Signature

# Tree boosters handle missing values natively; JSON null becomes NaN for them.
MISSING_OK_FORMATS = frozenset({"xgboost", "lightgbm"})


def invalid_json_message(what: str, text: bytes, error: Exception) -> str:
    """What orjson found wrong (and where), plus the usual cause with numbers."""
    hint = ""
    if b"NaN" in text or b"Infinity" in text:
        hint = " (NaN and Infinity are not JSON numbers)"
    return f"{what} is not valid JSON: {error}{hint}"


def _features(signature: Signature) -> str:
    names = signature.feature_names
    if names:
        shown = ", ".join(names) if len(names) <= 8 else f"{names[0]}..{names[-1]}"
        return f"{signature.n_features} features per row ({shown})"
    return f"{signature.n_features} features per row (f0..f{signature.n_features - 1})"


def _first_problem(rows: list[Any], signature: Signature, allow_missing: bool) -> Invalid | None:
    width = signature.n_features
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            return Invalid(
                f"row {index} is not a list of numbers; expected {_features(signature)}",
                code="invalid_input",
            )
        if len(row) != width:
            return Invalid(
                f"expected {_features(signature)}, row {index} has {len(row)}",
                code="invalid_input",
            )
        for column, value in enumerate(row):
            if value is None and allow_missing:
                continue
            if isinstance(value, bool):
                return _boolean(index, column, value)
            if not isinstance(value, int | float):
                return Invalid(
                    f"row {index}, feature {column}: {value!r} is not a number",
                    code="invalid_input",
                )
            if isinstance(value, float) and not math.isfinite(value):
                return Invalid(
                    f"row {index}, feature {column}: NaN and infinity are not accepted",
                    code="invalid_input",
                )
    return None


def _boolean(index: int, column: int | str, value: bool) -> Invalid:
    return Invalid(
        f"row {index}, feature {column}: {str(value).lower()} is not a number (send 1 or 0)",
        code="invalid_input",
    )


def _first_boolean(rows: list[Any]) -> Invalid | None:
    """numpy reads ``[true, 2.5]`` as ``[1.0, 2.5]``: JSON booleans are found by a walk."""
    for index, row in enumerate(rows):
        if isinstance(row, list):
            for column, value in enumerate(row):
                if isinstance(value, bool):
                    return _boolean(index, column, value)
    return None


def _bad_row(rows: list[Any], signature: Signature, allow_missing: bool) -> Invalid:
    problem = _first_problem(rows, signature, allow_missing)
    return problem or Invalid(f"expected {_features(signature)}", code="invalid_input")


def _from_records(records: list[Any], signature: Signature) -> list[Any]:
    names = signature.feature_names
    if not names:
        raise Invalid(
            "this model's features have no names: send rows as lists of "
            f"{signature.n_features} numbers",
            code="invalid_input",
        )
    rows = []
    expected = set(names)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise Invalid(f"row {index} is not an object like row 0", code="invalid_input")
        if record.keys() != expected:
            missing = sorted(expected - record.keys())
            extra = sorted(record.keys() - expected)
            raise Invalid(
                f"row {index}: missing features {missing}, unknown features {extra}; "
                f"expected {names}",
                code="invalid_input",
            )
        rows.append([record[name] for name in names])
    return rows


def rows_to_array(
    data: Any,
    signature: Signature,
    *,
    model_format: str,
    max_rows: int,
    may_hold_booleans: bool = True,
) -> np.ndarray:
    """``data`` (rows of numbers, or of ``{feature: value}``) as a 2-D array for the model.

    ``may_hold_booleans=False`` skips the walk that refuses JSON ``true``/``false``: the
    caller knows that the request's text has none (a search of the raw body costs far
    less than the walk).
    """
    if not isinstance(data, list) or not data:
        raise Invalid(
            f"'data' must be a non-empty list of rows, each with {_features(signature)}",
            code="invalid_input",
        )
    if len(data) > max_rows:
        raise PayloadTooLarge(
            f"{len(data)} rows is more than the limit of {max_rows} per request "
            "(MLOPS_MAX_PREDICT_ROWS); split the request",
            code="too_many_rows",
        )
    if isinstance(data[0], dict):
        data = _from_records(data, signature)
    if may_hold_booleans:
        boolean = _first_boolean(data)
        if boolean is not None:
            raise boolean
    allow_missing = model_format in MISSING_OK_FORMATS
    try:
        array = np.array(data)
    except (ValueError, TypeError):
        raise _bad_row(data, signature, allow_missing) from None
    if array.ndim != 2 or array.shape[1] != signature.n_features:
        raise _bad_row(data, signature, allow_missing)
    if array.dtype.kind not in "iuf":
        # Objects: nulls mixed with numbers, which boosters take as missing values.
        if not allow_missing or array.dtype.kind != "O":
            raise _bad_row(data, signature, allow_missing)
        problem = _first_problem(data, signature, allow_missing)
        if problem is not None:
            raise problem
        array = np.array(data, dtype=np.float64)
    elif array.dtype.kind == "f" and not np.isfinite(array).all():
        raise _bad_row(data, signature, False)
    target = np.dtype(signature.input_dtype)
    if target.kind == "i" and array.dtype.kind == "f":
        if not np.array_equal(array, np.round(array)):
            raise Invalid(
                "this model takes integer features; got fractional values", code="invalid_input"
            )
    return array.astype(target, copy=False)


def check_array(
    array: np.ndarray, signature: Signature, *, model_format: str, max_rows: int
) -> np.ndarray:
    """A decoded tensor (V2 protocol) as the model's input, or a 422 that says why."""
    if array.ndim == 1 and signature.n_features == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != signature.n_features:
        raise Invalid(
            f"expected a tensor of shape [rows, {signature.n_features}] "
            f"({_features(signature)}), got {list(array.shape)}",
            code="invalid_input",
        )
    if array.shape[0] == 0:
        raise Invalid("the input tensor has no rows", code="invalid_input")
    if array.shape[0] > max_rows:
        raise PayloadTooLarge(
            f"{array.shape[0]} rows is more than the limit of {max_rows} per request "
            "(MLOPS_MAX_PREDICT_ROWS)",
            code="too_many_rows",
        )
    if array.dtype.kind not in "iuf":
        raise Invalid(f"tensor datatype {array.dtype} is not numeric", code="invalid_input")
    if array.dtype.kind == "f":
        bad = np.isinf(array) if model_format in MISSING_OK_FORMATS else ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise Invalid(f"row {row}: NaN or infinity is not accepted", code="invalid_input")
    return array.astype(np.dtype(signature.input_dtype), copy=False)
