"""Convert in-memory models to ONNX: skl2onnx for scikit-learn, onnxmltools for boosters.

Converted graphs take float32 input named ``input`` and return labels plus a
plain probability matrix (no ZipMap), or one regression column.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx


def model_to_onnx(model: Any, n_features: int) -> onnx.ModelProto:
    """Convert a scikit-learn estimator or an XGBoost/LightGBM booster.

    Raises whatever the converter raises when it does not support the model;
    callers treat any exception as "no ONNX for this model".
    """
    if _is_instance(model, "xgboost", "Booster"):
        if model.feature_names:
            # onnxmltools only understands XGBoost's default f0, f1, ... names;
            # the graph takes columns by position either way.
            model = model.copy()
            model.feature_names = None
        converted = _boosters().convert_xgboost(
            model, initial_types=_float_input(n_features, ml=True)
        )
    elif _is_instance(model, "lightgbm", "Booster"):
        converted = _boosters().convert_lightgbm(
            model, initial_types=_float_input(n_features, ml=True), zipmap=False
        )
    else:
        from skl2onnx import to_onnx
        from sklearn.base import is_classifier

        options = {id(model): {"zipmap": False}} if is_classifier(model) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # converter deprecation chatter is not actionable
            converted = to_onnx(
                model, initial_types=_float_input(n_features, ml=False), options=options
            )
    model_proto: onnx.ModelProto = converted
    _free_batch_dimension(model_proto)
    return model_proto


def _is_instance(model: Any, library: str, name: str) -> bool:
    """``isinstance(model, library.name)`` without importing ``library``: a model of a
    library that was never imported cannot be one of its objects."""
    module = sys.modules.get(library)
    return module is not None and isinstance(model, getattr(module, name))


def _float_input(n_features: int, *, ml: bool) -> list[tuple[str, Any]]:
    if ml:
        from onnxmltools.convert.common.data_types import FloatTensorType
    else:
        from skl2onnx.common.data_types import FloatTensorType
    return [("input", FloatTensorType([None, n_features]))]


def _boosters() -> Any:
    import onnxmltools

    return onnxmltools


def _free_batch_dimension(model: onnx.ModelProto) -> None:
    """Some converters declare outputs of batch size 1; onnxruntime then logs a
    warning on every call with more rows. Declare the batch size symbolic."""
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim if output.type.HasField("tensor_type") else []
        if dims:
            dims[0].dim_param = "N"
