"""Checks a loaded scikit-learn model before any of its compiled code runs.

skops only checks the *types* in a file. Several scikit-learn types keep
arrays that compiled code trusts blindly (tree nodes, libsvm support-vector
counts, neighbour indexes), so a crafted file can crash the server on the
first ``predict``. ``check_estimator`` walks the fitted model and verifies
those arrays, or rebuilds the structure from plain data where that is simpler.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures
from sklearn.svm import SVC, SVR
from sklearn.tree import BaseDecisionTree

from mlops.errors import Invalid

from ._trees import check_tree

# Generous for real models, small enough that a crafted degree cannot hang us.
MAX_POLYNOMIAL_OUTPUTS = 100_000
# scikit-learn is untyped (Any to mypy), so these are tuples for isinstance only.
_GB = (GradientBoostingClassifier, GradientBoostingRegressor)
_HGB = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
_KNN = (KNeighborsClassifier, KNeighborsRegressor)
_SVM = (SVC, SVR)


def check_estimator(est: Any) -> None:
    """Raise ``Invalid`` if a fitted estimator's internal arrays are inconsistent.

    Neighbour models get their search index rebuilt from ``_fit_X`` in place;
    everything else is only read.
    """
    _walk(est, bound=None)


def _walk(est: Any, bound: int | None) -> None:
    if not isinstance(est, BaseEstimator):
        return
    name = type(est).__name__
    n_in = getattr(est, "n_features_in_", None)
    if not isinstance(n_in, int | np.integer) or n_in <= 0:
        raise _bad(f"{name} has no valid n_features_in_ (is it fitted?)")
    # Ensembles call their members on the ensemble's already-validated input.
    width = int(n_in) if bound is None else min(int(n_in), bound)
    if isinstance(est, Pipeline):
        for _, step in est.steps:
            _walk(step, None)
    elif isinstance(est, ColumnTransformer):
        for _, transformer, _ in getattr(est, "transformers_", []):
            _walk(transformer, None)
    elif isinstance(est, BaseDecisionTree):
        _check_sk_tree(name, est.tree_, width)
    elif isinstance(est, _GB):
        _check_gb(est, width)
    elif isinstance(est, _HGB):
        _check_hgb(est, width)
    elif isinstance(est, _SVM):
        _check_svm(est, width)
    elif isinstance(est, _KNN):
        _rebuild_neighbors(est, width)
    elif isinstance(est, PolynomialFeatures):
        degree = est.degree if isinstance(est.degree, int) else max(est.degree)
        if math.comb(width + int(degree), int(degree)) > MAX_POLYNOMIAL_OUTPUTS:
            raise _bad("PolynomialFeatures would produce too many columns")
    for member in getattr(est, "estimators_", []) if not isinstance(est, _GB) else []:
        _walk(member, width)


def _check_sk_tree(name: str, tree: Any, width: int) -> None:
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    if tree.node_count != len(left) or np.asarray(tree.value).shape[0] != tree.node_count:
        raise _bad(f"{name} has a tree whose node count does not match its arrays")
    # sklearn marks leaves with -1 in both child slots.
    leaves = (left == -1) & (right == -1)
    check_tree(f"{name}'s tree", left, right, ~leaves, np.asarray(tree.feature), width)


def _check_gb(est: Any, width: int) -> None:
    trees = est.estimators_
    expected = 1
    if isinstance(est, GradientBoostingClassifier) and len(est.classes_) > 2:
        expected = len(est.classes_)
    if not isinstance(trees, np.ndarray) or trees.ndim != 2 or trees.shape[1] != expected:
        raise _bad("GradientBoosting estimators_ has the wrong shape")
    _walk(est.init_, width)  # checked before _raw_predict_init runs it
    # The compiled stage loop writes one column per tree into the initial
    # predictions; their widths must agree or it writes out of bounds.
    init = est._raw_predict_init(np.zeros((1, width)))
    if init.shape != (1, expected):
        raise _bad("GradientBoosting init_ does not match its trees")
    for member in trees.ravel():
        if not isinstance(member, BaseDecisionTree):
            raise _bad("GradientBoosting contains a non-tree stage")
        _check_sk_tree("GradientBoosting", member.tree_, width)


def _check_hgb(est: Any, width: int) -> None:
    per_iter = int(est.n_trees_per_iteration_)
    categorical = getattr(est, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise _bad("HistGradientBoosting with categorical features is not supported")
    for stage in est._predictors:
        if len(stage) != per_iter:
            raise _bad("HistGradientBoosting has a stage with the wrong number of trees")
        for predictor in stage:
            nodes = predictor.nodes
            if nodes.ndim != 1 or np.any(nodes["is_categorical"][nodes["is_leaf"] == 0]):
                raise _bad("HistGradientBoosting has unsupported categorical splits")
            internal = nodes["is_leaf"] == 0
            check_tree(
                "HistGradientBoosting's tree",
                nodes["left"],
                nodes["right"],
                internal,
                nodes["feature_idx"],
                width,
            )


def _check_svm(est: Any, width: int) -> None:
    if est._sparse or est.kernel not in ("linear", "poly", "rbf", "sigmoid"):
        raise _bad("only dense SVMs with a linear, poly, rbf or sigmoid kernel are supported")
    vectors = np.asarray(est.support_vectors_)
    if vectors.ndim != 2 or vectors.shape[1] != width:
        raise _bad("SVM support vectors do not match the number of features")
    n_sv = vectors.shape[0]
    counts = np.asarray(est._n_support)
    n_class = len(counts)
    pairs = n_class * (n_class - 1) // 2
    # libsvm reads these arrays with sizes derived from n_class and n_sv.
    ok = (
        np.asarray(est.support_).shape == (n_sv,)
        and np.asarray(est._dual_coef_).shape == (n_class - 1, n_sv)
        and np.asarray(est._intercept_).shape == (pairs,)
    )
    if isinstance(est, SVC):
        ok = ok and n_class == len(est.classes_) and counts.min() >= 0 and counts.sum() == n_sv
    else:
        ok = ok and n_class == 2
    # libsvm reads probA/probB (one per class pair) whenever this flag is set.
    flag = getattr(est, "_effective_probability", False)
    if flag is not False and flag != 0:
        ok = ok and np.shape(est._probA) == (pairs,) and np.shape(est._probB) == (pairs,)
    if not ok:
        raise _bad("SVM internal arrays are inconsistent")


def _rebuild_neighbors(est: Any, width: int) -> None:
    fit_x = np.asarray(est._fit_X)
    if fit_x.ndim != 2 or fit_x.shape[1] != width or len(est._y) != fit_x.shape[0]:
        raise _bad("KNeighbors training data does not match the model")
    method = est._fit_method
    if method == "brute":
        est._tree = None
        return
    if method not in ("kd_tree", "ball_tree"):
        raise _bad(f"unknown KNeighbors search method {method!r}")
    # The stored index arrays are never trusted: rebuild it as fit() would.
    index_type = KDTree if method == "kd_tree" else BallTree
    est._tree = index_type(
        fit_x, est.leaf_size, metric=est.effective_metric_, **est.effective_metric_params_
    )


def _bad(what: str) -> Invalid:
    return Invalid(f"{what}; the file is corrupt or crafted", code="model_invalid")
