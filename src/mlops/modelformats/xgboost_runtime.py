"""XGBoost boosters, run by XGBoost (imported only when an XGBoost model is opened)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost

from .runtime import Runtime, from_probabilities
from .signature import Prediction, Signature
from .xgboost_format import load_xgboost, xgboost_details, xgboost_signature


class XGBoostRuntime(Runtime):
    """``Booster.inplace_predict`` with labels derived as ``XGBClassifier`` does."""

    name = "xgboost"

    def __init__(self, booster: xgboost.Booster, signature: Signature, objective: str) -> None:
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.signature = signature
        self.objective = objective

    def conversion_source(self) -> Any:
        return self.booster

    def _predict(self, x: np.ndarray) -> Prediction:
        out = np.asarray(self.booster.inplace_predict(x, validate_features=False))
        if self.signature.output_kind == "regression":
            return Prediction(values=out.reshape(len(x)), probabilities=None)
        if self.objective == "binary:logitraw":
            out = 1.0 / (1.0 + np.exp(-out))
        if not self.signature.has_probabilities:
            return Prediction(values=out.reshape(len(x)).astype(np.int64), probabilities=None)
        return from_probabilities(out, len(x))


def open_model(path: Path) -> tuple[Runtime, dict[str, Any]]:
    """The format registry's opener: ``path`` checked and loaded, with its details."""
    booster, doc = load_xgboost(path)
    signature = xgboost_signature(booster, doc)
    objective = str(doc["learner"]["objective"]["name"])
    return XGBoostRuntime(booster, signature, objective), xgboost_details(doc)
