"""Real model files, trained in the tests on small fixed-seed data."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import lightgbm
import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import xgboost
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skops.io import dump


def training_data() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=200, n_features=5, random_state=7)
    return x.astype(np.float32), y


def write_model_files(directory: Path) -> dict[str, Path]:
    """One file per accepted format, plus refused ones, keyed by a short name."""
    directory.mkdir(parents=True, exist_ok=True)
    x, y = training_data()
    logistic = LogisticRegression(max_iter=200).fit(x, y)
    files: dict[str, Path] = {}

    files["skops"] = directory / "model.skops"
    dump(logistic, files["skops"])

    onnx_model = to_onnx(logistic, x[:1], options={id(logistic): {"zipmap": False}})
    files["onnx"] = directory / "model.onnx"
    files["onnx"].write_bytes(onnx_model.SerializeToString())

    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2}, xgboost.DMatrix(x, label=y), 5
    )
    files["xgboost"] = directory / "model.json"
    booster.save_model(files["xgboost"])

    lgbm = lightgbm.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 5},
        lightgbm.Dataset(x, label=y),
        num_boost_round=5,
    )
    files["lightgbm"] = directory / "model.txt"
    lgbm.save_model(str(files["lightgbm"]))

    # A skops file that would call os.system when loaded with trust.
    files["skops_untrusted"] = directory / "untrusted.skops"
    dump(
        Pipeline([("f", FunctionTransformer(func=os.system)), ("m", logistic)]),
        files["skops_untrusted"],
    )

    files["pickle"] = directory / "model.pkl"
    files["pickle"].write_bytes(pickle.dumps(logistic))
    files["joblib"] = directory / "model.joblib"
    files["joblib"].write_bytes(pickle.dumps(logistic))
    files["pickle_as_onnx"] = directory / "sneaky.onnx"
    files["pickle_as_onnx"].write_bytes(pickle.dumps(logistic))
    files["corrupt_onnx"] = directory / "corrupt.onnx"
    files["corrupt_onnx"].write_bytes(files["onnx"].read_bytes()[:200])
    files["empty"] = directory / "empty.onnx"
    files["empty"].write_bytes(b"")

    # skl2onnx keeps linear weights in node attributes; a MatMul keeps them in an
    # initializer, which is what external data moves out of the file.
    weights = onnx.numpy_helper.from_array(np.ones((5, 1), dtype=np.float32), name="w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 5])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 1])],
        initializer=[weights],
    )
    external = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    files["external_onnx"] = directory / "external" / "model.onnx"
    files["external_onnx"].parent.mkdir()
    onnx.save_model(
        external,
        files["external_onnx"],
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return files
