"""Every runtime reproduces its library's own predictions, ONNX or native."""

from __future__ import annotations

import time
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
# Converters that cannot produce an equivalent graph today; the platform must
# notice and serve these natively instead of silently serving wrong answers.
EXPECTED_FALLBACK = {"histgb"}


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
        assert runtime.name == native_name
    if prefer_onnx and name in EXPECTED_FALLBACK:
        assert runtime.fallback_reason
    x = check_input(runtime.signature, case.x)
    _assert_agrees(runtime.predict(x), case.expected)


def test_single_row_latency(cases: dict[str, ModelCase], infos: dict[str, ModelInfo]) -> None:
    """Prints single-row latency per path (run with -s); measures, asserts nothing."""
    for name in ("pipeline", "forest", "xgb_binary", "lgb_binary"):
        case = cases[name]
        for prefer_onnx in (True, False):
            runtime = load_runtime(case.path, infos[name], prefer_onnx=prefer_onnx)
            row = check_input(runtime.signature, case.x[:1])
            runtime.predict(row)
            start = time.perf_counter()
            for _ in range(200):
                runtime.predict(row)
            micros = (time.perf_counter() - start) / 200 * 1e6
            print(f"\n{name:<11} {runtime.name:<12} {micros:8.1f} us/row")


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
    assert runtime.name == "xgboost"
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
