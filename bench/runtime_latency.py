"""Single-row latency of each model runtime, through onnxruntime and natively.

In process, no server: what one row costs in ``Runtime.predict`` for a scikit-learn
pipeline, a random forest, XGBoost and LightGBM (small models trained here from a
fixed-seed synthetic data set). A measurement, not a test: the test suite checks that
the runtimes agree with their libraries (tests/modelformats/test_runtime.py).

    uv run python bench/runtime_latency.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightgbm
import numpy as np
import skops.io as sio
import xgboost
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops.modelformats import inspect_model, load_runtime
from mlops.modelformats.signature import check_input


def _models(out: Path) -> dict[str, Path]:
    x, y = make_classification(n_samples=200, n_features=5, n_informative=3, random_state=0)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(x, y)
    sio.dump(pipeline, out / "pipeline.skops")
    sio.dump(forest, out / "forest.skops")
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 4, "seed": 0, "nthread": 1},
        xgboost.DMatrix(x, label=y),
        num_boost_round=20,
    )
    booster.save_model(str(out / "xgb_binary.json"))
    lgb = lightgbm.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0},
        lightgbm.Dataset(x, label=y),
        num_boost_round=20,
    )
    lgb.save_model(str(out / "lgb_binary.txt"))
    return {p.stem: p for p in sorted(out.iterdir())}


def _median_micros(call: Callable[[], object], repeat: int) -> float:
    call()  # warm up
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            call()
        samples.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="calls per sample (5 samples)")
    args = parser.parse_args()
    row = np.array([[0.5, -1.0, 2.0, 0.0, 1.0]])
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':<11} {'runtime':<12} {'us/row':>8}")
        for name, path in _models(Path(tmp)).items():
            info = inspect_model(path, path.name)
            for prefer_onnx in (True, False):
                runtime = load_runtime(path, info, prefer_onnx=prefer_onnx)
                x = check_input(runtime.signature, row)
                micros = _median_micros(lambda: runtime.predict(x), args.repeat)  # noqa: B023
                why = f"  (not ONNX: {runtime.fallback_reason})" if runtime.fallback_reason else ""
                print(f"{name:<11} {runtime.name:<12} {micros:8.1f}{why[:120]}")


if __name__ == "__main__":
    main()
