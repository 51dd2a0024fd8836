"""``convert_file`` turns the user's own pickles into files the platform accepts."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal

import joblib
import numpy as np
import pytest
import xgboost
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops.errors import BadRequest
from mlops.modelformats import convert_file, inspect_model, load_runtime

from .conftest import Data


@pytest.mark.parametrize("to", ["onnx", "skops"])
def test_pickled_pipeline_converts_and_predicts_the_same(
    data: Data, tmp_path: Path, to: Literal["onnx", "skops"]
) -> None:
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(data.x, data.multi)
    src = tmp_path / "model.pkl"
    src.write_bytes(pickle.dumps(model))
    dest = convert_file(src, tmp_path / f"model.{to}", to)
    info = inspect_model(dest, dest.name)
    assert info.format == to
    assert info.signature.classes == [0, 1, 2]
    runtime = load_runtime(dest, info)
    np.testing.assert_array_equal(runtime.predict(data.x).values, model.predict(data.x))


def test_joblib_regressor_converts_to_onnx(data: Data, tmp_path: Path) -> None:
    model = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0)
    model.fit(data.x, data.target)
    src = tmp_path / "model.joblib"
    joblib.dump(model, src)
    dest = convert_file(src, tmp_path / "model.onnx", "onnx")
    info = inspect_model(dest, "model.onnx")
    assert info.signature.output_kind == "regression"
    out = load_runtime(dest, info).predict(data.x.astype(np.float32))
    np.testing.assert_allclose(out.values, model.predict(data.x), rtol=1e-4, atol=1e-3)


def test_xgboost_wrapper_converts_to_onnx_but_not_skops(data: Data, tmp_path: Path) -> None:
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2, random_state=0)
    model.fit(data.x, data.binary)
    src = tmp_path / "xgb.pkl"
    src.write_bytes(pickle.dumps(model))
    dest = convert_file(src, tmp_path / "xgb.onnx", "onnx")
    info = inspect_model(dest, "xgb.onnx")
    labels = load_runtime(dest, info).predict(data.x.astype(np.float32)).values
    np.testing.assert_array_equal(labels, model.predict(data.x))
    with pytest.raises(BadRequest) as caught:
        convert_file(src, tmp_path / "xgb.skops", "skops")
    assert caught.value.code == "unsupported_format"
    assert "save_model" in caught.value.message
    assert not (tmp_path / "xgb.skops").exists()
