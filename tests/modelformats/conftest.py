"""Small real models, trained at test time with fixed seeds and saved in each format.

``ModelCase.expected`` is what the model's own library predicts on ``x``; every
runtime must reproduce it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnx
import pytest
import skops.io as sio
import xgboost
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mlops.modelformats import Prediction

ROWS = 120


@dataclass(frozen=True)
class ModelCase:
    name: str
    path: Path
    format: str
    x: np.ndarray
    expected: Prediction
    native: Any


@dataclass(frozen=True)
class Data:
    x: np.ndarray
    binary: np.ndarray
    multi: np.ndarray
    target: np.ndarray


@pytest.fixture(scope="session")
def data() -> Data:
    x, multi = make_classification(
        n_samples=ROWS, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    _, target = make_regression(n_samples=ROWS, n_features=5, random_state=0)
    return Data(x=x, binary=(multi > 0).astype(np.int64), multi=multi, target=target)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _sklearn_case(name: str, model: Any, x: np.ndarray, y: np.ndarray, out: Path) -> ModelCase:
    model.fit(x, y)
    path = out / f"{name}.skops"
    sio.dump(model, path)
    proba = model.predict_proba(x) if hasattr(model, "predict_proba") else None
    expected = Prediction(values=model.predict(x), probabilities=proba)
    return ModelCase(name, path, "skops", x, expected, model)


def _xgb_case(
    name: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray, out: Path, suffix: str
) -> ModelCase:
    booster = xgboost.train(
        {"max_depth": 3, "seed": 0, "nthread": 1, **params},
        xgboost.DMatrix(x, label=y),
        num_boost_round=5,
    )
    path = out / f"{name}{suffix}"
    booster.save_model(str(path))
    raw = booster.predict(xgboost.DMatrix(x))
    return ModelCase(name, path, "xgboost", x, _boosted(raw, params["objective"]), booster)


def _lgb_case(
    name: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray, out: Path
) -> ModelCase:
    settings = {"num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1, "seed": 0, **params}
    booster = lightgbm.train(settings, lightgbm.Dataset(x, label=y), num_boost_round=5)
    path = out / f"{name}.txt"
    booster.save_model(str(path))
    raw = np.asarray(booster.predict(x))
    return ModelCase(name, path, "lightgbm", x, _boosted(raw, params["objective"]), booster)


def _boosted(raw: np.ndarray, objective: str) -> Prediction:
    """Labels as XGBClassifier/LGBMClassifier derive them from booster output."""
    if objective in ("binary:logistic", "binary"):
        return Prediction(
            values=(raw > 0.5).astype(np.int64), probabilities=np.column_stack([1 - raw, raw])
        )
    if objective in ("multi:softprob", "multiclass"):
        return Prediction(values=np.argmax(raw, axis=1), probabilities=raw)
    return Prediction(values=raw, probabilities=None)


@pytest.fixture(scope="session")
def cases(data: Data, model_dir: Path) -> dict[str, ModelCase]:
    x, out = data.x, model_dir
    builders: list[Callable[[], ModelCase]] = [
        lambda: _sklearn_case("logreg", LogisticRegression(), x, data.binary, out),
        lambda: _sklearn_case(
            "forest",
            RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0),
            x,
            data.multi,
            out,
        ),
        lambda: _sklearn_case(
            "gboost",
            GradientBoostingClassifier(n_estimators=5, random_state=0),
            x,
            data.binary,
            out,
        ),
        lambda: _sklearn_case(
            "pipeline", make_pipeline(StandardScaler(), LogisticRegression()), x, data.multi, out
        ),
        lambda: _sklearn_case("ridge", Ridge(), x, data.target, out),
        lambda: _sklearn_case(
            "histgb", HistGradientBoostingClassifier(max_iter=5, random_state=0), x, data.multi, out
        ),
        lambda: _sklearn_case("svc", SVC(), x, data.multi, out),
        lambda: _sklearn_case("knn", KNeighborsClassifier(n_neighbors=3), x, data.multi, out),
        lambda: _xgb_case(
            "xgb_binary", {"objective": "binary:logistic"}, x, data.binary, out, ".json"
        ),
        lambda: _xgb_case(
            "xgb_multi", {"objective": "multi:softprob", "num_class": 3}, x, data.multi, out, ".ubj"
        ),
        lambda: _xgb_case(
            "xgb_reg", {"objective": "reg:squarederror"}, x, data.target, out, ".json"
        ),
        lambda: _lgb_case("lgb_binary", {"objective": "binary"}, x, data.binary, out),
        lambda: _lgb_case(
            "lgb_multi", {"objective": "multiclass", "num_class": 3}, x, data.multi, out
        ),
        lambda: _lgb_case("lgb_reg", {"objective": "regression"}, x, data.target, out),
    ]
    built = [build() for build in builders]
    built.append(_onnx_case(data, out))
    return {case.name: case for case in built}


def _onnx_case(data: Data, out: Path) -> ModelCase:
    """A classifier converted with skl2onnx's defaults, i.e. with a ZipMap output."""
    model = LogisticRegression().fit(data.x, data.multi)
    path = out / "onnx_zipmap.onnx"
    path.write_bytes(to_onnx(model, data.x[:1].astype(np.float32)).SerializeToString())
    x32 = data.x.astype(np.float32)
    expected = Prediction(values=model.predict(x32), probabilities=model.predict_proba(x32))
    return ModelCase("onnx_zipmap", path, "onnx", x32, expected, model)


def linear_onnx(names: list[str]) -> onnx.ModelProto:
    """y = x @ [1, 2, 3, ...] with one ``[N, 1]`` input per named feature; the
    weights are an initializer tensor (which can be moved to external data)."""
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in names]
    column = np.arange(1, len(names) + 1, dtype=np.float32).reshape(-1, 1)
    weights = numpy_helper.from_array(column, name="w")  # raw_data, so it can go external
    graph = helper.make_graph(
        [
            helper.make_node("Concat", names, ["x"], axis=1),
            helper.make_node("MatMul", ["x", "w"], ["y"]),
        ],
        "linear",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
