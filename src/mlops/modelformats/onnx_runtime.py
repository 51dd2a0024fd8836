"""ONNX models on onnxruntime (imported only when an ONNX model is opened or converted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mlops.errors import Invalid, PlatformError

from .onnx_format import load_onnx, onnx_details, onnx_signature
from .runtime import Runtime
from .signature import Prediction, Signature

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class OnnxRuntime(Runtime):
    """onnxruntime on CPU, one thread, sequential execution, all graph optimizations."""

    name = "onnxruntime"

    def __init__(self, model_bytes: bytes, signature: Signature) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # From bytes, so no external-data path is ever resolved on disk.
        self.session = ort.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self.signature = signature
        self._inputs = [
            (i.name, _ORT_DTYPES.get(i.type, np.float32)) for i in self.session.get_inputs()
        ]

    def _predict(self, x: np.ndarray) -> Prediction:
        if len(self._inputs) == 1:
            name, dtype = self._inputs[0]
            feeds = {name: x.astype(dtype, copy=False)}
        else:
            feeds = {
                n: x[:, i : i + 1].astype(t, copy=False) for i, (n, t) in enumerate(self._inputs)
            }
        outputs = self.session.run(None, feeds)
        values = np.asarray(outputs[0]).reshape(len(x), -1)
        if values.shape[1] != 1:
            raise Invalid(
                "the ONNX model returned more than one value per row", code="model_invalid"
            )
        probabilities = None
        if self.signature.has_probabilities:
            probabilities = _probability_matrix(outputs[1], self.signature.classes)
        return Prediction(values=values[:, 0], probabilities=probabilities)


def make_onnx_runtime(data: bytes, signature: Signature) -> OnnxRuntime:
    try:
        return OnnxRuntime(data, signature)
    except PlatformError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise Invalid(f"onnxruntime could not load the model: {exc}", code="model_invalid") from exc


def open_model(path: Path) -> tuple[Runtime, dict[str, Any]]:
    """The format registry's opener: ``path`` checked and loaded, with its details."""
    model, data = load_onnx(path)
    return make_onnx_runtime(data, onnx_signature(model)), onnx_details(model)


def _probability_matrix(raw: Any, classes: list[Any] | None) -> np.ndarray:
    """Probabilities as ``(rows, n_classes)``, converting ZipMap's list of dicts."""
    if isinstance(raw, list):
        keys = classes if classes is not None else sorted(raw[0]) if raw else []
        return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64).reshape(
            len(raw), len(keys)
        )
    return np.asarray(raw, dtype=np.float64)
