"""Opening accepted model files as runtimes, preferring a verified ONNX conversion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .formats import FORMATS, open_model
from .library_errors import first_line
from .runtime import Runtime
from .signature import ModelInfo, Prediction, Signature, sample_input

if TYPE_CHECKING:
    from .onnx_cache import ConversionCache
    from .onnx_runtime import OnnxRuntime

# float32 (ONNX) against float64 (native) arithmetic.
RTOL = 1e-3
ATOL = 1e-4
VERIFY_ROWS = 32

__all__ = ["convert_and_verify", "disagreement", "load_runtime", "open_model"]


def load_runtime(
    path: Path,
    info: ModelInfo,
    *,
    prefer_onnx: bool = True,
    conversions: ConversionCache | None = None,
) -> Runtime:
    """Load a model that ``inspect_model`` accepted as ``info``.

    The file is checked again, as on upload (storage is not trusted either).
    For non-ONNX formats with ``prefer_onnx``, the model is converted to ONNX
    and used only if it agrees with its own library on a sample input;
    otherwise the native runtime is returned with ``fallback_reason`` set.
    With ``conversions``, a verified conversion of this exact file (by content and
    library versions) is served from there, without loading the native library.
    """
    if info.format == "onnx" or not prefer_onnx:
        runtime, _ = open_model(path, info.format)
        return runtime
    key = conversions.key(path, FORMATS[info.format]) if conversions is not None else None
    cached = conversions.get(key) if conversions is not None and key is not None else None
    if cached is not None and cached.onnx is not None:
        return _onnx_runtime(cached.onnx, info.signature)
    runtime, _ = open_model(path, info.format)
    if cached is not None:
        runtime.fallback_reason = cached.refused
        return runtime
    converted = _convert(runtime)
    if conversions is not None and key is not None:
        if isinstance(converted, str):
            conversions.put_refused(key, converted)
        else:
            conversions.put_onnx(key, converted[0])
    if isinstance(converted, str):
        runtime.fallback_reason = converted
        return runtime
    return converted[1]


def convert_and_verify(native: Runtime) -> tuple[OnnxRuntime | None, str | None]:
    """An ONNX runtime equivalent to ``native``, or ``None`` and the reason why not."""
    converted = _convert(native)
    if isinstance(converted, str):
        return None, converted
    return converted[1], None


def _convert(native: Runtime) -> tuple[bytes, OnnxRuntime] | str:
    """The verified ONNX graph and its runtime, or why there is none."""
    model = native.conversion_source()
    if model is None:
        return f"no ONNX conversion for the {native.name} runtime"
    try:
        from .to_onnx import model_to_onnx

        data = model_to_onnx(model, native.signature.n_features).SerializeToString()
        candidate = _onnx_runtime(data, native.signature)
    except Exception as exc:  # converters fail in many library-specific ways
        return f"ONNX conversion failed: {type(exc).__name__}: {first_line(str(exc))}"
    sample = sample_input(native.signature, rows=VERIFY_ROWS)
    try:
        mismatch = disagreement(native.predict(sample), candidate.predict(sample))
    except Exception as exc:
        reason = first_line(str(exc))  # kept in the version's details: no paths
        return f"converted ONNX model failed to run: {type(exc).__name__}: {reason}"
    if mismatch is not None:
        return f"converted ONNX model disagrees with the native model: {mismatch}"
    return data, candidate


def _onnx_runtime(data: bytes, signature: Signature) -> OnnxRuntime:
    from .onnx_runtime import OnnxRuntime

    return OnnxRuntime(data, signature)


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
