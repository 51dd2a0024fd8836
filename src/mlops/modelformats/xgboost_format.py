"""XGBoost models saved with ``Booster.save_model`` as ``.json`` or ``.ubj``.

XGBoost follows tree child indices without bounds checks, so the trees the
booster actually holds (re-exported as JSON) are checked before first use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xgboost

from mlops.errors import BadRequest, Invalid

from ._trees import check_tree
from .library_errors import client_message
from .signature import Signature

# Objectives whose output is a class; the first group also gives probabilities.
PROBA_OBJECTIVES = frozenset({"binary:logistic", "binary:logitraw", "multi:softprob"})
LABEL_OBJECTIVES = frozenset({"binary:hinge", "multi:softmax"})


def load_xgboost(path: Path) -> tuple[xgboost.Booster, dict[str, Any]]:
    """The booster in ``path`` and its JSON model, after structural checks.

    ``Invalid`` (``model_invalid``) if the file is not a loadable XGBoost model
    or its trees are malformed; ``BadRequest`` for unsupported model features.
    """
    _check_looks_like_xgboost(path)
    try:
        booster = xgboost.Booster(model_file=str(path))
        model = json.loads(bytes(booster.save_raw("json")))
    except (xgboost.core.XGBoostError, ValueError) as exc:
        message = client_message(exc, library="XGBoost")
        raise _invalid(f"XGBoost could not load it: {message}") from exc
    try:
        _check_trees(model)
    except (KeyError, TypeError, ValueError) as exc:
        raise _invalid(f"unexpected model structure: {exc}") from exc
    return booster, model


def xgboost_signature(booster: xgboost.Booster, model: dict[str, Any]) -> Signature:
    objective = str(model["learner"]["objective"]["name"])
    num_class = int(model["learner"]["learner_model_param"].get("num_class", "0"))
    classes: list[int | float | str] | None = None
    if objective.startswith("binary:"):
        classes = [0, 1]
    elif objective.startswith("multi:"):
        classes = list(range(num_class))
    names = booster.feature_names
    return Signature(
        n_features=booster.num_features(),
        feature_names=list(names) if names else None,
        input_dtype="float32",
        output_kind="class_labels" if classes is not None else "regression",
        classes=classes,
        has_probabilities=objective in PROBA_OBJECTIVES,
    )


def xgboost_details(model: dict[str, Any]) -> dict[str, Any]:
    learner = model["learner"]
    return {
        "library": "xgboost",
        "estimator": "Booster",
        "objective": learner["objective"]["name"],
        "booster": learner["gradient_booster"]["name"],
        "saved_with": ".".join(str(v) for v in model.get("version", [])),
        "xgboost_version": xgboost.__version__,
    }


def is_ubjson(head: bytes) -> bool:
    """Whether a file starting with ``head`` is UBJSON (an object whose first key length
    has a UBJSON type marker) rather than JSON."""
    return head.startswith(b"{") and head[1:2] in (b"L", b"l", b"i", b"I", b"U", b"$", b"#")


def _check_looks_like_xgboost(path: Path) -> None:
    # By content, not by name: an upload is stored under a temporary name.
    with path.open("rb") as fh:
        head = fh.read(64)
    if is_ubjson(head):
        if b"learner" not in head:
            raise _invalid("UBJSON without a 'learner' object is not an XGBoost model")
        return
    try:
        doc = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid(f"not valid JSON: {client_message(exc, library='json')}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("learner"), dict):
        raise _invalid("JSON without a 'learner' object is not an XGBoost model")


def _check_trees(model: dict[str, Any]) -> None:
    learner = model["learner"]
    params = learner["learner_model_param"]
    n_features = int(params["num_feature"])
    if int(params.get("num_target", "1")) > 1:
        raise BadRequest("multi-target XGBoost models are not supported", code="unsupported_format")
    booster = learner["gradient_booster"]
    kind = booster["name"]
    if kind == "dart":
        booster = booster["gbtree"]
    elif kind != "gbtree":
        raise BadRequest(f"XGBoost booster {kind!r} is not supported", code="unsupported_format")
    for i, tree in enumerate(booster["model"]["trees"]):
        n_nodes = int(tree["tree_param"]["num_nodes"])
        left = np.asarray(tree["left_children"], dtype=np.int64)
        if len(left) != n_nodes:
            raise _invalid(f"tree {i} declares {n_nodes} nodes but stores {len(left)}")
        if any(int(t) != 0 for t in tree.get("split_type", [])):
            raise BadRequest(
                "categorical XGBoost splits are not supported", code="unsupported_format"
            )
        check_tree(
            f"XGBoost tree {i}",
            left,
            np.asarray(tree["right_children"], dtype=np.int64),
            left != -1,
            np.asarray(tree["split_indices"], dtype=np.int64),
            n_features,
        )


def _invalid(reason: str) -> Invalid:
    return Invalid(f"invalid XGBoost model: {reason}", code="model_invalid")
