"""``mlops models convert``: turn a pickled model into a file the platform accepts.

SECURITY: unlike everything else in this package, ``convert_file`` UNPICKLES
its input (joblib/pickle), which runs any code the file contains. It exists
for the CLI on the user's own machine, for models the user trained; it must
never be called on an uploaded file or from any server process.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import lightgbm
import xgboost

from mlops.errors import BadRequest

from .detect import inspect_model
from .to_onnx import model_to_onnx


def convert_file(
    src: Path,
    dest: Path,
    to: Literal["onnx", "skops"],
    n_features: int | None = None,
) -> Path:
    """Load the TRUSTED pickle/joblib file ``src`` and write it to ``dest`` as ``to``.

    scikit-learn models can become ``onnx`` or ``skops``; XGBoost and LightGBM
    models (sklearn wrappers or boosters) become ``onnx``. ``n_features`` is
    needed only when the model does not record its input width. The written
    file is checked with ``inspect_model`` and deleted if it is not accepted;
    returns ``dest``.
    """
    model = _load_trusted(src)
    if isinstance(model, xgboost.XGBModel):
        model = model.get_booster()
    elif isinstance(model, lightgbm.LGBMModel):
        model = model.booster_
    if to == "skops":
        if isinstance(model, xgboost.Booster | lightgbm.Booster):
            raise BadRequest(
                "boosters cannot be stored as .skops; use --to onnx, or save them natively "
                "(booster.save_model('model.json') for XGBoost, 'model.txt' for LightGBM)",
                code="unsupported_format",
            )
        import skops.io as sio

        sio.dump(model, dest)
    else:
        width = n_features or _width(model)
        if width is None:
            raise BadRequest(
                "the model does not record how many features it takes; pass n_features",
                code="unsupported_format",
            )
        dest.write_bytes(model_to_onnx(model, width).SerializeToString())
    try:
        inspect_model(dest, dest.name)
    except Exception:
        dest.unlink(missing_ok=True)
        raise
    return dest


def _load_trusted(src: Path) -> Any:
    """Unpickle ``src``. Runs arbitrary code: trusted local files only."""
    import joblib

    try:
        return joblib.load(src)
    except (KeyError, ValueError, pickle.UnpicklingError):
        # Not a joblib container; plain pickles are read the same way.
        with src.open("rb") as fh:
            return pickle.load(fh)  # noqa: S301 - documented: the user's own file


def _width(model: Any) -> int | None:
    if isinstance(model, xgboost.Booster):
        return int(model.num_features())
    if isinstance(model, lightgbm.Booster):
        return int(model.num_feature())
    width = getattr(model, "n_features_in_", None)
    return int(width) if width is not None else None
