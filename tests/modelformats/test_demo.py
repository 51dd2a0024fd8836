"""The demo model is deterministic and passes the same checks as any upload."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlops.modelformats import build_demo_model, inspect_model, load_runtime


def test_demo_model_is_accepted_and_deterministic(tmp_path: Path) -> None:
    first = build_demo_model(tmp_path / "a")
    second = build_demo_model(tmp_path / "b")
    info = inspect_model(first, first.name)
    assert info.format == "skops"
    assert info.signature.n_features == 5
    assert info.signature.feature_names is None
    assert info.signature.classes == [0, 1]
    rows = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, -1.0, 0.5, 2.0, -3.0]])
    outputs = []
    for path in (first, second):
        for prefer_onnx in (True, False):
            outputs.append(load_runtime(path, info, prefer_onnx=prefer_onnx).predict(rows))
    for out in outputs[1:]:
        np.testing.assert_array_equal(out.values, outputs[0].values)
        assert out.probabilities is not None and outputs[0].probabilities is not None
        np.testing.assert_allclose(
            out.probabilities, outputs[0].probabilities, rtol=1e-3, atol=1e-5
        )
