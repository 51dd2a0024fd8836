"""Every runtime reproduces its library's own predictions, ONNX or native."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import xgboost

from mlops.modelformats import ModelInfo, Prediction, inspect_model, load_runtime
from mlops.modelformats.signature import check_input

from .conftest import Data, ModelCase

CASES = [
    "logreg",
    "forest",
    "gboost",
    "pipeline",
    "ridge",
    "histgb",
    "svc",
    "knn",
    "xgb_binary",
    "xgb_multi",
    "xgb_reg",
    "lgb_binary",
    "lgb_multi",
    "lgb_reg",
    "onnx_zipmap",
]
# Converters that cannot produce an equivalent graph with the versions below; the
# platform must notice and serve these natively instead of silently serving wrong
# answers. These are facts about the converters, not the platform: see CONVERTERS.
EXPECTED_FALLBACK = {"histgb"}
# The versions the converter expectations in this file were observed with (pinned in
# pyproject.toml). An upgrade fails test_converter_expectations_are_for_these_versions
# first, saying what to re-check.
CONVERTERS = {
    "skl2onnx": "1.20.0",
    "onnxmltools": "1.16.0",
    "onnx": "1.23.2",
    "onnxruntime": "1.32.0",
    "scikit-learn": "1.9.1",
    "xgboost-cpu": "3.2.0",
    "lightgbm": "4.7.0",
}
RECHECK = (
    "re-check on upgrade: does HistGradientBoostingClassifier now convert to an "
    "equivalent graph (then drop it from EXPECTED_FALLBACK)? does onnxmltools still invert "
    "the labels of a 2-class multi:softmax booster (if not, give "
    "test_disagreeing_conversion_falls_back_to_native another model that disagrees)? "
    "then update CONVERTERS"
)


def _assert_agrees(actual: Prediction, expected: Prediction) -> None:
    if expected.values.dtype.kind == "f":
        np.testing.assert_allclose(actual.values, expected.values, rtol=1e-3, atol=1e-4)
    else:
        np.testing.assert_array_equal(actual.values, expected.values)
    if expected.probabilities is None:
        assert actual.probabilities is None
    else:
        assert actual.probabilities is not None
        np.testing.assert_allclose(
            actual.probabilities, expected.probabilities, rtol=1e-3, atol=1e-4
        )


@pytest.fixture(scope="module")
def infos(cases: dict[str, ModelCase]) -> dict[str, ModelInfo]:
    return {name: inspect_model(case.path, case.path.name) for name, case in cases.items()}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("prefer_onnx", [True, False])
def test_runtime_matches_library_predict(
    name: str, prefer_onnx: bool, cases: dict[str, ModelCase], infos: dict[str, ModelInfo]
) -> None:
    case = cases[name]
    runtime = load_runtime(case.path, infos[name], prefer_onnx=prefer_onnx)
    native_name = {"skops": "sklearn", "onnx": "onnxruntime"}.get(case.format, case.format)
    if case.format == "onnx" or (prefer_onnx and name not in EXPECTED_FALLBACK):
        assert runtime.name == "onnxruntime", runtime.fallback_reason
    else:
        assert runtime.name == native_name, f"{name} converted after all: {RECHECK}"
    if prefer_onnx and name in EXPECTED_FALLBACK:
        assert runtime.fallback_reason, RECHECK
    x = check_input(runtime.signature, case.x)
    _assert_agrees(runtime.predict(x), case.expected)


def test_converter_expectations_are_for_these_versions() -> None:
    installed = {name: version(name) for name in CONVERTERS}
    assert installed == CONVERTERS, f"converter versions changed: {RECHECK}"


def test_wrong_width_is_refused(cases: dict[str, ModelCase], infos: dict[str, ModelInfo]) -> None:
    from mlops.errors import Invalid

    runtime = load_runtime(cases["logreg"].path, infos["logreg"])
    with pytest.raises(Invalid) as err:
        runtime.predict(np.zeros((1, 4)))
    assert err.value.code == "invalid_input"
    assert "(rows, 5)" in err.value.message


def test_disagreeing_conversion_falls_back_to_native(data: Data, tmp_path: Path) -> None:
    # onnxmltools converts a 2-class multi:softmax booster with its labels
    # inverted; the sample check must catch that and keep XGBoost.
    booster = xgboost.train(
        {"objective": "multi:softmax", "num_class": 2, "max_depth": 2},
        xgboost.DMatrix(data.x, label=data.binary),
        num_boost_round=3,
    )
    path = tmp_path / "softmax.json"
    booster.save_model(str(path))
    runtime = load_runtime(path, inspect_model(path, path.name))
    assert runtime.name == "xgboost", f"the conversion no longer disagrees: {RECHECK}"
    assert runtime.fallback_reason is not None
    assert "disagrees" in runtime.fallback_reason
    expected = booster.predict(xgboost.DMatrix(data.x)).astype(np.int64)
    np.testing.assert_array_equal(runtime.predict(data.x.astype(np.float32)).values, expected)


def test_named_xgboost_features_still_convert(data: Data, tmp_path: Path) -> None:
    names = ["age", "income", "tenure", "visits", "score"]
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgboost.DMatrix(data.x, label=data.binary, feature_names=names),
        num_boost_round=3,
    )
    path = tmp_path / "named.json"
    booster.save_model(str(path))
    runtime = load_runtime(path, inspect_model(path, path.name))
    assert runtime.name == "onnxruntime", runtime.fallback_reason
    x = data.x.astype(np.float32)
    expected = booster.predict(xgboost.DMatrix(x, feature_names=names))
    out = runtime.predict(x).probabilities
    assert out is not None
    np.testing.assert_allclose(out[:, 1], expected, rtol=1e-3, atol=1e-4)
