"""Opening accepted model files as runtimes, preferring a verified ONNX conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .library_errors import first_line
from .lightgbm_format import lightgbm_details, lightgbm_signature, load_lightgbm
from .onnx_format import load_onnx, onnx_details, onnx_signature
from .runtime import (
    LightGBMRuntime,
    OnnxRuntime,
    Runtime,
    SklearnRuntime,
    XGBoostRuntime,
    make_onnx_runtime,
)
from .signature import FormatName, ModelInfo, Prediction, sample_input
from .skops_format import load_skops, sklearn_details, sklearn_signature
from .to_onnx import model_to_onnx
from .xgboost_format import load_xgboost, xgboost_details, xgboost_signature

# float32 (ONNX) against float64 (native) arithmetic.
RTOL = 1e-3
ATOL = 1e-4
VERIFY_ROWS = 32


def open_model(path: Path, fmt: FormatName) -> tuple[Runtime, dict[str, Any]]:
    """Load and check ``path`` as ``fmt``; its library's own runtime and details."""
    if fmt == "onnx":
        model, data = load_onnx(path)
        return make_onnx_runtime(data, onnx_signature(model)), onnx_details(model)
    if fmt == "skops":
        estimator = load_skops(path)
        return SklearnRuntime(estimator, sklearn_signature(estimator)), sklearn_details(estimator)
    if fmt == "xgboost":
        booster, doc = load_xgboost(path)
        signature = xgboost_signature(booster, doc)
        objective = str(doc["learner"]["objective"]["name"])
        return XGBoostRuntime(booster, signature, objective), xgboost_details(doc)
    lgb_booster, header = load_lightgbm(path)
    return LightGBMRuntime(lgb_booster, lightgbm_signature(lgb_booster, header)), lightgbm_details(
        header
    )


def load_runtime(path: Path, info: ModelInfo, *, prefer_onnx: bool = True) -> Runtime:
    """Load a model that ``inspect_model`` accepted as ``info``.

    The file is checked again, as on upload (storage is not trusted either).
    For non-ONNX formats with ``prefer_onnx``, the model is converted to ONNX
    and used only if it agrees with its own library on a sample input;
    otherwise the native runtime is returned with ``fallback_reason`` set.
    """
    runtime, _ = open_model(path, info.format)
    if info.format == "onnx" or not prefer_onnx:
        return runtime
    converted, reason = convert_and_verify(runtime)
    if converted is not None:
        return converted
    runtime.fallback_reason = reason
    return runtime


def convert_and_verify(native: Runtime) -> tuple[OnnxRuntime | None, str | None]:
    """An ONNX runtime equivalent to ``native``, or ``None`` and the reason why not."""
    model: Any
    if isinstance(native, SklearnRuntime):
        model = native.model
    elif isinstance(native, XGBoostRuntime | LightGBMRuntime):
        model = native.booster
    else:
        return None, f"no ONNX conversion for the {native.name} runtime"
    try:
        proto = model_to_onnx(model, native.signature.n_features)
        candidate = OnnxRuntime(proto.SerializeToString(), native.signature)
    except Exception as exc:  # converters fail in many library-specific ways
        return None, f"ONNX conversion failed: {type(exc).__name__}: {first_line(str(exc))}"
    sample = sample_input(native.signature, rows=VERIFY_ROWS)
    try:
        mismatch = disagreement(native.predict(sample), candidate.predict(sample))
    except Exception as exc:
        reason = first_line(str(exc))  # kept in the version's details: no paths
        return None, f"converted ONNX model failed to run: {type(exc).__name__}: {reason}"
    if mismatch is not None:
        return None, f"converted ONNX model disagrees with the native model: {mismatch}"
    return candidate, None


def disagreement(expected: Prediction, actual: Prediction) -> str | None:
    """How ``actual`` differs from ``expected`` beyond float32 tolerance, or ``None``."""
    if expected.values.shape != actual.values.shape:
        return f"values shape {actual.values.shape} != {expected.values.shape}"
    if expected.values.dtype.kind in "fc" and actual.values.dtype.kind in "fc":
        if not np.allclose(actual.values, expected.values, rtol=RTOL, atol=ATOL):
            return "regression values differ"
    elif not np.array_equal(actual.values.astype(object), expected.values.astype(object)):
        return f"labels differ on {int(np.sum(actual.values != expected.values))} rows"
    if expected.probabilities is None:
        return None
    if actual.probabilities is None or actual.probabilities.shape != expected.probabilities.shape:
        return "probability shapes differ"
    if not np.allclose(actual.probabilities, expected.probabilities, rtol=RTOL, atol=ATOL):
        return "probabilities differ"
    return None
