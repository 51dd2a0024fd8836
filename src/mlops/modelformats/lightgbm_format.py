"""LightGBM models saved with ``Booster.save_model`` (the text format).

LightGBM's loader and predictor trust the tree arrays in the text (a bad child
index crashes ``predict``, a short array hangs it) and abort the whole process
on some format errors while parsing trees in parallel. The text is therefore
parsed and checked here first, and handed to LightGBM without its
``tree_sizes`` line so that LightGBM parses it sequentially, raising
catchable errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np

from mlops.errors import BadRequest, Invalid

from ._trees import check_tree
from .library_errors import client_message
from .signature import Signature

_AUTO_NAME = re.compile(r"Column_\d+")
_CATEGORICAL = 1  # bit 0 of decision_type marks a categorical split


def load_lightgbm(path: Path) -> tuple[lightgbm.Booster, dict[str, str]]:
    """The booster in ``path`` and its header fields, after structural checks."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("the file is not UTF-8 text") from exc
    header, trees, clean = _parse(text)
    n_features = _int(header, "max_feature_idx") + 1
    for i, tree in enumerate(trees):
        _check_one(i, tree, n_features)
    try:
        booster = lightgbm.Booster(model_str=clean)
    except lightgbm.basic.LightGBMError as exc:
        message = client_message(exc, library="LightGBM")
        raise _invalid(f"LightGBM could not load it: {message}") from exc
    if booster.num_trees() != len(trees) or booster.num_feature() != n_features:
        raise _invalid("LightGBM loaded a different model than the file describes")
    return booster, header


def lightgbm_signature(booster: lightgbm.Booster, header: dict[str, str]) -> Signature:
    objective = header.get("objective", "").split(" ")[0]
    classes: list[int | float | str] | None = None
    if objective == "binary":
        classes = [0, 1]
    elif objective in ("multiclass", "multiclassova"):
        classes = list(range(_int(header, "num_class")))
    names = [str(n) for n in booster.feature_name()]
    auto = all(_AUTO_NAME.fullmatch(n) for n in names)
    return Signature(
        n_features=booster.num_feature(),
        feature_names=None if auto else names,
        input_dtype="float64",
        output_kind="class_labels" if classes is not None else "regression",
        classes=classes,
        has_probabilities=classes is not None,
    )


def lightgbm_details(header: dict[str, str]) -> dict[str, Any]:
    return {
        "library": "lightgbm",
        "estimator": "Booster",
        "objective": header.get("objective", ""),
        "saved_with": header.get("version", ""),
        "lightgbm_version": lightgbm.__version__,
    }


def _parse(text: str) -> tuple[dict[str, str], list[dict[str, str]], str]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "tree" or not text.startswith("tree\nversion=v"):
        raise _invalid("missing the 'tree' / 'version=v…' header of a LightGBM model")
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    kept: list[str] = []
    current: dict[str, str] | None = None
    ended = False
    for line in lines:
        if not ended and line.startswith("tree_sizes="):
            continue  # dropped on purpose: see the module docstring
        kept.append(line)
        if ended or not line.strip():
            continue
        if line.strip() == "end of trees":
            ended = True
        elif line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif "=" in line:
            key, value = line.split("=", 1)
            (header if current is None else current)[key.strip()] = value.strip()
    if not ended:
        raise _invalid("the model text is truncated (no 'end of trees')")
    if header.get("is_linear") == "1" or any(t.get("is_linear") == "1" for t in trees):
        raise BadRequest("linear-tree LightGBM models are not supported", code="unsupported_format")
    per_iter = _int(header, "num_tree_per_iteration")
    if per_iter < 1 or len(trees) % per_iter:
        raise _invalid("the number of trees does not match num_tree_per_iteration")
    return header, trees, "\n".join(kept)


def _check_one(i: int, tree: dict[str, str], n_features: int) -> None:
    where = f"LightGBM tree {i}"
    n_leaves = _int(tree, "num_leaves")
    if n_leaves < 1 or len(_ints(tree, "leaf_value", float_ok=True)) != n_leaves:
        raise _invalid(f"{where} has a bad num_leaves or leaf_value")
    if n_leaves == 1:
        return
    n_split = n_leaves - 1
    arrays = {
        k: _ints(tree, k) for k in ("split_feature", "left_child", "right_child", "decision_type")
    }
    thresholds = _ints(tree, "threshold", float_ok=True)
    if any(len(v) != n_split for v in arrays.values()) or len(thresholds) != n_split:
        raise _invalid(f"{where} has split arrays of the wrong length")
    children = np.concatenate([arrays["left_child"], arrays["right_child"]])
    if children.max() >= n_split:
        raise _invalid(f"{where} has a child index outside the tree")
    # Splits are 0..n_split-1 and leaf j is stored as ~j; mapping leaf j to node
    # n_split + j lets one check cover both kinds of child.
    left, right = (
        np.where(c >= 0, c, n_split + ~c) for c in (arrays["left_child"], arrays["right_child"])
    )
    total = n_split + n_leaves
    internal = np.zeros(total, dtype=bool)
    internal[:n_split] = True
    pad = np.full(n_leaves, -1, dtype=np.int64)
    features = np.concatenate([arrays["split_feature"], pad])
    check_tree(
        where,
        np.concatenate([left, pad]),
        np.concatenate([right, pad]),
        internal,
        features,
        n_features,
    )
    if not np.any(arrays["decision_type"] & _CATEGORICAL):
        return
    n_cat = _int(tree, "num_cat")
    bounds = _ints(tree, "cat_boundaries")
    cats = _ints(tree, "cat_threshold")
    cat_idx = thresholds[(arrays["decision_type"] & _CATEGORICAL) == 1]
    if (
        len(bounds) != n_cat + 1
        or bounds[0] != 0
        or bounds[-1] != len(cats)
        or np.any(np.diff(bounds) < 0)
        or np.any(cat_idx != np.floor(cat_idx))
        or cat_idx.min() < 0
        or cat_idx.max() >= n_cat
    ):
        raise _invalid(f"{where} has malformed categorical splits")


def _int(fields: dict[str, str], key: str) -> int:
    try:
        return int(fields[key])
    except (KeyError, ValueError) as exc:
        raise _invalid(f"missing or non-integer field {key!r}") from exc


def _ints(fields: dict[str, str], key: str, *, float_ok: bool = False) -> np.ndarray:
    raw = fields.get(key)
    if raw is None:
        raise _invalid(f"a tree is missing its {key!r} field")
    try:
        values = [float(v) if float_ok else int(v) for v in raw.split()]
    except ValueError as exc:
        raise _invalid(f"field {key!r} has a non-numeric entry") from exc
    return np.asarray(values, dtype=np.float64 if float_ok else np.int64)


def _invalid(reason: str) -> Invalid:
    return Invalid(f"invalid LightGBM model: {reason}", code="model_invalid")
