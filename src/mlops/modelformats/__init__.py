"""Safe model file formats: detection, validation, signatures, runtimes, conversion.

Uploaded files are never unpickled. Accepted formats are ONNX, skops
(scikit-learn, under an allow-list), XGBoost JSON/UBJSON and LightGBM text;
``inspect_model`` accepts a file only after it loaded and predicted.
"""

from .convert import convert_file
from .demo import build_demo_model
from .detect import inspect_model, sniff
from .loader import load_runtime
from .runtime import LightGBMRuntime, OnnxRuntime, Runtime, SklearnRuntime, XGBoostRuntime
from .signature import ModelInfo, Prediction, Signature, sample_input

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
