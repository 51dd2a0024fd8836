"""Files crafted to crash or hang the loader's compiled code are refused, not run.

Each of these would segfault, read out of bounds or loop forever in the
library's ``predict`` if it were loaded as is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from mlops.errors import Invalid
from mlops.modelformats import inspect_model, load_runtime

from .conftest import Data, ModelCase


def _invalid(path: Path) -> str:
    with pytest.raises(Invalid) as caught:
        inspect_model(path, path.name)
    assert caught.value.code == "model_invalid"
    return caught.value.message


def _tamper_tree(tree: Any, field: str, value: int) -> None:
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][0] = value
    tree.__setstate__({**state, "nodes": nodes})


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("left_child", 10**8, "child index outside"), ("feature", 50, "feature outside")],
)
def test_sklearn_tree_with_bad_node_is_invalid(
    data: Data, tmp_path: Path, field: str, value: int, reason: str
) -> None:
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data.x, data.binary)
    _tamper_tree(model.tree_, field, value)
    sio.dump(model, tmp_path / "tree.skops")
    assert reason in _invalid(tmp_path / "tree.skops")


def test_tree_cycle_in_a_forest_is_invalid(data: Data, tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0)
    model.fit(data.x, data.multi)
    right = int(model.estimators_[1].tree_.children_right[0])
    _tamper_tree(model.estimators_[1].tree_, "left_child", right)  # two parents
    sio.dump(model, tmp_path / "forest.skops")
    assert "two parents" in _invalid(tmp_path / "forest.skops")


def test_hist_gradient_boosting_with_bad_node_is_invalid(data: Data, tmp_path: Path) -> None:
    model = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(data.x, data.binary)
    model._predictors[0][0].nodes["left"][0] = 10**6
    sio.dump(model, tmp_path / "hgb.skops")
    assert "child index outside" in _invalid(tmp_path / "hgb.skops")


def test_svm_with_inconsistent_support_counts_is_invalid(data: Data, tmp_path: Path) -> None:
    model = SVC().fit(data.x, data.multi)
    model._n_support = (model._n_support * 1000).astype(np.int32)
    sio.dump(model, tmp_path / "svc.skops")
    assert "SVM internal arrays" in _invalid(tmp_path / "svc.skops")


def test_neighbors_index_is_rebuilt_not_trusted(data: Data, tmp_path: Path) -> None:
    model = KNeighborsClassifier(n_neighbors=3).fit(data.x, data.multi)
    expected = model.predict(data.x)
    state = list(model._tree.__getstate__())
    state[1] = np.full_like(state[1], 10**6)  # idx_array: every index out of bounds
    model._tree.__setstate__(tuple(state))
    path = tmp_path / "knn.skops"
    sio.dump(model, path)
    info = inspect_model(path, path.name)
    runtime = load_runtime(path, info, prefer_onnx=False)
    np.testing.assert_array_equal(runtime.predict(data.x).values, expected)


def test_xgboost_tree_with_bad_child_is_invalid(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    doc = json.loads(cases["xgb_binary"].path.read_text())
    doc["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 10**7
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert "child index outside" in _invalid(path)


def _lgb_text(cases: dict[str, ModelCase]) -> str:
    return cases["lgb_binary"].path.read_text()


def _replace_first(text: str, key: str, edit: Any) -> str:
    match = re.search(rf"^{key}=(.*)$", text, flags=re.M)
    assert match is not None
    values = match.group(1).split(" ")
    return text[: match.start(1)] + " ".join(edit(values)) + text[match.end(1) :]


def test_lightgbm_tree_with_bad_child_is_invalid(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(_replace_first(_lgb_text(cases), "left_child", lambda v: ["100000", *v[1:]]))
    assert "child index outside" in _invalid(path)


def test_lightgbm_tree_with_short_array_is_invalid(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    path = tmp_path / "short.txt"
    path.write_text(_replace_first(_lgb_text(cases), "right_child", lambda v: v[:1]))
    assert "wrong length" in _invalid(path)


def test_lightgbm_wrong_tree_sizes_does_not_abort_the_process(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    # LightGBM's parallel parser calls std::terminate on this; the line is ignored.
    path = tmp_path / "sizes.txt"
    path.write_text(_replace_first(_lgb_text(cases), "tree_sizes", lambda v: ["7"] * len(v)))
    assert inspect_model(path, path.name).format == "lightgbm"
