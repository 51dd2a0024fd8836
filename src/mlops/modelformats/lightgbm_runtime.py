"""LightGBM boosters, run by LightGBM (imported only when a LightGBM model is opened)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm
import numpy as np

from .lightgbm_format import lightgbm_details, lightgbm_signature, load_lightgbm
from .runtime import Runtime, from_probabilities
from .signature import Prediction, Signature


class LightGBMRuntime(Runtime):
    """``Booster.predict`` with labels derived as ``LGBMClassifier`` does."""

    name = "lightgbm"

    def __init__(self, booster: lightgbm.Booster, signature: Signature) -> None:
        self.booster = booster
        self.signature = signature

    def conversion_source(self) -> Any:
        return self.booster

    def _predict(self, x: np.ndarray) -> Prediction:
        out = np.asarray(self.booster.predict(x, num_threads=1))
        if self.signature.output_kind == "regression":
            return Prediction(values=out.reshape(len(x)), probabilities=None)
        return from_probabilities(out, len(x))


def open_model(path: Path) -> tuple[Runtime, dict[str, Any]]:
    """The format registry's opener: ``path`` checked and loaded, with its details."""
    booster, header = load_lightgbm(path)
    return LightGBMRuntime(booster, lightgbm_signature(booster, header)), lightgbm_details(header)
