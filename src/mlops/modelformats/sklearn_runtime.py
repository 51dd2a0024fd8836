"""scikit-learn models from skops files, run by scikit-learn itself.

Imported only when a skops model is opened: skops and scikit-learn (with SciPy)
are the slowest libraries of the platform to import.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .runtime import Runtime
from .signature import Prediction, Signature
from .skops_format import load_skops, sklearn_details, sklearn_signature


class SklearnRuntime(Runtime):
    """scikit-learn's own ``predict`` / ``predict_proba``."""

    name = "sklearn"

    def __init__(self, model: Any, signature: Signature) -> None:
        self.model = model
        self.signature = signature

    def conversion_source(self) -> Any:
        return self.model

    def _predict(self, x: np.ndarray) -> Prediction:
        with warnings.catch_warnings():
            # Models fitted on a DataFrame warn on every ndarray; the columns
            # are matched by position, which the signature documents.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            values = np.asarray(self.model.predict(x))
            proba = self.model.predict_proba(x) if self.signature.has_probabilities else None
        return Prediction(values=values.reshape(len(x)), probabilities=proba)


def open_model(path: Path) -> tuple[Runtime, dict[str, Any]]:
    """The format registry's opener: ``path`` checked and loaded, with its details."""
    estimator = load_skops(path)
    return SklearnRuntime(estimator, sklearn_signature(estimator)), sklearn_details(estimator)
