"""What a model expects and returns, independent of the file format it came in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops.errors import Invalid

InputDtype = Literal["float32", "float64", "int64"]
OutputKind = Literal["class_labels", "probabilities", "regression"]
FormatName = Literal["onnx", "skops", "xgboost", "lightgbm"]
ClassLabel = int | float | str


class Signature(BaseModel):
    """The input a model takes and the output it gives, as stored in the registry.

    ``feature_names`` is set only when the model itself knows its column names.
    Classifiers report ``output_kind="class_labels"``; ``has_probabilities`` says
    whether they can also return one probability column per entry of ``classes``.
    """

    model_config = ConfigDict(frozen=True)

    n_features: int = Field(gt=0)
    feature_names: list[str] | None
    input_dtype: InputDtype
    output_kind: OutputKind
    classes: list[ClassLabel] | None
    has_probabilities: bool


class ModelInfo(BaseModel):
    """The result of a successful ``inspect_model``: the file loaded and predicted."""

    model_config = ConfigDict(frozen=True)

    format: FormatName
    signature: Signature
    details: dict[str, Any]


@dataclass(frozen=True)
class Prediction:
    """One batch of outputs: ``values`` has one entry per input row.

    ``values`` holds class labels for classifiers and numbers for regressors;
    ``probabilities`` is ``(rows, len(classes))`` in class order, or ``None``.
    """

    values: np.ndarray
    probabilities: np.ndarray | None


def sample_input(signature: Signature, rows: int = 8, seed: int = 0) -> np.ndarray:
    """A small deterministic batch of the right width and dtype to smoke-test a model.

    The rows mix zeros, ones and small random values so that tree models take
    more than one path; they are not meant to be realistic.
    """
    rng = np.random.default_rng(seed)
    width = signature.n_features
    base = [np.zeros(width), np.ones(width)]
    extra = rng.normal(0.0, 1.5, size=(max(rows - 2, 0), width))
    data = np.vstack([*base, *extra])[:rows]
    if signature.input_dtype == "int64":
        data = np.rint(data)
    return data.astype(np.dtype(signature.input_dtype))


def check_input(signature: Signature, x: np.ndarray) -> np.ndarray:
    """``x`` as a 2-D array of the signature's dtype and width, or ``Invalid``."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] != signature.n_features:
        raise Invalid(
            f"expected a 2-D input of shape (rows, {signature.n_features}), got {arr.shape}",
            code="invalid_input",
        )
    target = np.dtype(signature.input_dtype)
    if arr.dtype == target:
        return arr
    # Numbers only; floats are never silently truncated into an int64 model.
    if arr.dtype.kind not in "biuf" or (target.kind == "i" and arr.dtype.kind == "f"):
        raise Invalid(
            f"input of dtype {arr.dtype} cannot be used as {signature.input_dtype}",
            code="invalid_input",
        )
    converted: np.ndarray = arr.astype(target)
    return converted


def to_python_labels(classes: Any) -> list[ClassLabel]:
    """Class labels as JSON-friendly Python scalars, in the model's order."""
    labels: list[ClassLabel] = []
    for item in np.asarray(classes).tolist():
        if isinstance(item, bool):
            labels.append(int(item))
        elif isinstance(item, int | float | str):
            labels.append(item)
        else:
            raise Invalid(f"unsupported class label {item!r}", code="model_invalid")
    return labels
