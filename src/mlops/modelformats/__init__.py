"""Safe model file formats: detection, validation, signatures, runtimes, conversion.

Uploaded files are never unpickled. Accepted formats are ONNX, skops
(scikit-learn, under an allow-list), XGBoost JSON/UBJSON and LightGBM text;
``inspect_model`` accepts a file only after it loaded and predicted.

Every name below is imported on first use (PEP 562), and model libraries only
when a file of their format is opened (see ``formats``): importing this package,
or ``Signature`` from it, costs no scikit-learn, XGBoost, LightGBM or onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .convert import convert_file
    from .demo import build_demo_model
    from .detect import inspect_model, sniff
    from .lightgbm_runtime import LightGBMRuntime
    from .loader import load_runtime
    from .onnx_runtime import OnnxRuntime
    from .runtime import Runtime
    from .signature import ModelInfo, Prediction, Signature, sample_input
    from .sklearn_runtime import SklearnRuntime
    from .xgboost_runtime import XGBoostRuntime

_WHERE = {
    "LightGBMRuntime": "lightgbm_runtime",
    "ModelInfo": "signature",
    "OnnxRuntime": "onnx_runtime",
    "Prediction": "signature",
    "Runtime": "runtime",
    "Signature": "signature",
    "SklearnRuntime": "sklearn_runtime",
    "XGBoostRuntime": "xgboost_runtime",
    "build_demo_model": "demo",
    "convert_file": "convert",
    "inspect_model": "detect",
    "load_runtime": "loader",
    "sample_input": "signature",
    "sniff": "detect",
}
__all__ = [
    "LightGBMRuntime",
    "ModelInfo",
    "OnnxRuntime",
    "Prediction",
    "Runtime",
    "Signature",
    "SklearnRuntime",
    "XGBoostRuntime",
    "build_demo_model",
    "convert_file",
    "inspect_model",
    "load_runtime",
    "sample_input",
    "sniff",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
