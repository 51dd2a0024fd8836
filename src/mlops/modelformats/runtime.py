"""Runtimes: a loaded model that turns a 2-D input into a ``Prediction``.

``loader.load_runtime`` picks one: onnxruntime when it can (much faster for
single rows), otherwise the model's own library.
"""

from __future__ import annotations

import abc
import warnings
from typing import Any

import lightgbm
import numpy as np
import onnxruntime as ort
import xgboost

from mlops.errors import Invalid, PlatformError

from .signature import Prediction, Signature, check_input

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class Runtime(abc.ABC):
    """A model ready to serve.

    ``predict`` takes a 2-D array of ``signature.n_features`` columns and
    returns one value per row (class labels or numbers) plus, for classifiers
    with ``signature.has_probabilities``, probabilities in ``classes`` order.
    Implementations must be safe to call from one thread at a time; they run
    single-threaded so that the server can scale by processes.
    """

    name: str
    signature: Signature
    fallback_reason: str | None = None

    def predict(self, x: np.ndarray) -> Prediction:
        """Validate ``x`` against the signature, then run the model."""
        return self._predict(check_input(self.signature, x))

    @abc.abstractmethod
    def _predict(self, x: np.ndarray) -> Prediction: ...


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


class SklearnRuntime(Runtime):
    """scikit-learn's own ``predict`` / ``predict_proba``."""

    name = "sklearn"

    def __init__(self, model: Any, signature: Signature) -> None:
        self.model = model
        self.signature = signature

    def _predict(self, x: np.ndarray) -> Prediction:
        with warnings.catch_warnings():
            # Models fitted on a DataFrame warn on every ndarray; the columns
            # are matched by position, which the signature documents.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            values = np.asarray(self.model.predict(x))
            proba = self.model.predict_proba(x) if self.signature.has_probabilities else None
        return Prediction(values=values.reshape(len(x)), probabilities=proba)


class XGBoostRuntime(Runtime):
    """``Booster.inplace_predict`` with labels derived as ``XGBClassifier`` does."""

    name = "xgboost"

    def __init__(self, booster: xgboost.Booster, signature: Signature, objective: str) -> None:
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.signature = signature
        self.objective = objective

    def _predict(self, x: np.ndarray) -> Prediction:
        out = np.asarray(self.booster.inplace_predict(x, validate_features=False))
        if self.signature.output_kind == "regression":
            return Prediction(values=out.reshape(len(x)), probabilities=None)
        if self.objective == "binary:logitraw":
            out = 1.0 / (1.0 + np.exp(-out))
        if not self.signature.has_probabilities:
            return Prediction(values=out.reshape(len(x)).astype(np.int64), probabilities=None)
        return _from_probabilities(out, len(x))


class LightGBMRuntime(Runtime):
    """``Booster.predict`` with labels derived as ``LGBMClassifier`` does."""

    name = "lightgbm"

    def __init__(self, booster: lightgbm.Booster, signature: Signature) -> None:
        self.booster = booster
        self.signature = signature

    def _predict(self, x: np.ndarray) -> Prediction:
        out = np.asarray(self.booster.predict(x, num_threads=1))
        if self.signature.output_kind == "regression":
            return Prediction(values=out.reshape(len(x)), probabilities=None)
        return _from_probabilities(out, len(x))


def make_onnx_runtime(data: bytes, signature: Signature) -> OnnxRuntime:
    try:
        return OnnxRuntime(data, signature)
    except PlatformError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise Invalid(f"onnxruntime could not load the model: {exc}", code="model_invalid") from exc


def _from_probabilities(out: np.ndarray, rows: int) -> Prediction:
    """Binary models give P(class 1) per row; multiclass give a row per class."""
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        positive = out.reshape(rows).astype(np.float64)
        proba = np.column_stack([1.0 - positive, positive])
    else:
        proba = out.reshape(rows, -1).astype(np.float64)
    return Prediction(values=np.argmax(proba, axis=1).astype(np.int64), probabilities=proba)


def _probability_matrix(raw: Any, classes: list[Any] | None) -> np.ndarray:
    """Probabilities as ``(rows, n_classes)``, converting ZipMap's list of dicts."""
    if isinstance(raw, list):
        keys = classes if classes is not None else sorted(raw[0]) if raw else []
        return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64).reshape(
            len(raw), len(keys)
        )
    return np.asarray(raw, dtype=np.float64)
