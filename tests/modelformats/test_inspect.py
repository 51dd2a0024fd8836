"""Accepted files: detected by content, loaded, smoke-predicted, signature extracted."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import onnx
import pytest
import skops.io as sio
import xgboost
from sklearn.linear_model import LogisticRegression

from mlops.modelformats import ModelInfo, Signature, inspect_model, load_runtime

from .conftest import Data, ModelCase, linear_onnx

EXPECTED = {
    "logreg": ("skops", "float64", "class_labels", [0, 1], True),
    "forest": ("skops", "float64", "class_labels", [0, 1, 2], True),
    "ridge": ("skops", "float64", "regression", None, False),
    "svc": ("skops", "float64", "class_labels", [0, 1, 2], False),
    "xgb_binary": ("xgboost", "float32", "class_labels", [0, 1], True),
    "xgb_multi": ("xgboost", "float32", "class_labels", [0, 1, 2], True),
    "xgb_reg": ("xgboost", "float32", "regression", None, False),
    "lgb_binary": ("lightgbm", "float64", "class_labels", [0, 1], True),
    "lgb_multi": ("lightgbm", "float64", "class_labels", [0, 1, 2], True),
    "lgb_reg": ("lightgbm", "float64", "regression", None, False),
    "onnx_zipmap": ("onnx", "float32", "class_labels", [0, 1, 2], True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_signature_per_format(name: str, cases: dict[str, ModelCase]) -> None:
    fmt, dtype, kind, classes, has_proba = EXPECTED[name]
    info = inspect_model(cases[name].path, cases[name].path.name)
    assert info.format == fmt
    assert info.signature == Signature(
        n_features=5,
        feature_names=None,
        input_dtype=dtype,
        output_kind=kind,
        classes=classes,
        has_probabilities=has_proba,
    )
    assert ModelInfo.model_validate_json(info.model_dump_json()) == info


def test_details_name_library_and_estimator(cases: dict[str, ModelCase]) -> None:
    pipe = inspect_model(cases["pipeline"].path, "model.skops").details
    assert pipe["library"] == "sklearn"
    assert pipe["estimator"] == "Pipeline"
    assert pipe["steps"] == ["StandardScaler", "LogisticRegression"]
    onnx_details = inspect_model(cases["onnx_zipmap"].path, "m.onnx").details
    assert onnx_details["library"] == "onnx"
    assert onnx_details["opset"]["ai.onnx.ml"] >= 1
    xgb = inspect_model(cases["xgb_binary"].path, "m.json").details
    assert (xgb["library"], xgb["objective"]) == ("xgboost", "binary:logistic")
    lgb = inspect_model(cases["lgb_reg"].path, "m.txt").details
    assert lgb["library"] == "lightgbm"
    assert lgb["objective"].startswith("regression")


def test_upload_name_decides_the_claim_not_the_storage_path(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    stored = tmp_path / "blob-1234"
    stored.write_bytes(cases["logreg"].path.read_bytes())
    assert inspect_model(stored, "churn.SKOPS").format == "skops"


def test_feature_names_from_xgboost_and_lightgbm(data: Data, tmp_path: Path) -> None:
    names = ["age", "income", "tenure", "visits", "score"]
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2},
        xgboost.DMatrix(data.x, label=data.target, feature_names=names),
        num_boost_round=2,
    )
    booster.save_model(str(tmp_path / "named.json"))
    assert inspect_model(tmp_path / "named.json", "named.json").signature.feature_names == names
    lgb = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 4},
        lightgbm.Dataset(data.x, label=data.target, feature_name=names),
        num_boost_round=2,
    )
    lgb.save_model(str(tmp_path / "named.txt"))
    assert inspect_model(tmp_path / "named.txt", "named.txt").signature.feature_names == names


def test_sklearn_feature_names_and_ndarray_input(data: Data, tmp_path: Path) -> None:
    model = LogisticRegression().fit(data.x, data.binary)
    expected = model.predict(data.x)
    # What fitting on a DataFrame records; rows are still matched by position.
    model.feature_names_in_ = np.array([f"c{i}" for i in range(5)], dtype=object)
    sio.dump(model, tmp_path / "named.skops")
    info = inspect_model(tmp_path / "named.skops", "named.skops")
    assert info.signature.feature_names == ["c0", "c1", "c2", "c3", "c4"]
    for prefer_onnx in (True, False):
        runtime = load_runtime(tmp_path / "named.skops", info, prefer_onnx=prefer_onnx)
        np.testing.assert_array_equal(runtime.predict(data.x).values, expected)


def test_onnx_with_one_input_per_named_feature(tmp_path: Path) -> None:
    names = ["height", "weight", "age"]
    model = linear_onnx(names)
    onnx.save_model(model, tmp_path / "named.onnx")
    info = inspect_model(tmp_path / "named.onnx", "named.onnx")
    assert info.signature.feature_names == names
    assert info.signature.output_kind == "regression"
    runtime = load_runtime(tmp_path / "named.onnx", info)
    out = runtime.predict(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]], dtype=np.float32))
    np.testing.assert_allclose(out.values, [6.0, 6.0])
