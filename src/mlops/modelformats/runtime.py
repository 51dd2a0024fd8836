"""Runtimes: a loaded model that turns a 2-D input into a ``Prediction``.

This module holds the interface and shared helpers only, and imports no model
library: each library's runtime lives in its own module (``onnx_runtime``,
``sklearn_runtime``, ``xgboost_runtime``, ``lightgbm_runtime``), imported through
the format registry (``formats``) when a model of that format is first opened.
``loader.load_runtime`` picks one: onnxruntime when it can (much faster for single
rows), otherwise the model's own library.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from .signature import Prediction, Signature, check_input


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

    def conversion_source(self) -> Any | None:
        """The in-memory model an ONNX converter takes (``to_onnx.model_to_onnx``), or
        ``None`` when this runtime has nothing to convert (it is ONNX already)."""
        return None

    @abc.abstractmethod
    def _predict(self, x: np.ndarray) -> Prediction: ...


def from_probabilities(out: np.ndarray, rows: int) -> Prediction:
    """Binary models give P(class 1) per row; multiclass give a row per class."""
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        positive = out.reshape(rows).astype(np.float64)
        proba = np.column_stack([1.0 - positive, positive])
    else:
        proba = out.reshape(rows, -1).astype(np.float64)
    return Prediction(values=np.argmax(proba, axis=1).astype(np.int64), probabilities=proba)
