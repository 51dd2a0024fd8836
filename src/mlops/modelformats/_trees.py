"""Structural checks for decision trees read from untrusted files.

The tree walkers of scikit-learn, XGBoost and LightGBM follow child indices
without bounds checks; a crafted index crashes the process or reads memory,
and a cycle loops forever. Every tree is checked here before it is used.
"""

from __future__ import annotations

import numpy as np

from mlops.errors import Invalid


def check_tree(
    where: str,
    left: np.ndarray,
    right: np.ndarray,
    internal: np.ndarray,
    feature: np.ndarray,
    n_features: int,
) -> None:
    """Raise ``Invalid`` unless the nodes form a tree rooted at node 0.

    ``internal`` marks split nodes; only their ``left``/``right``/``feature``
    entries are read. Every child must be a valid node index other than the
    root, and no node may have two parents: with a parentless root this
    guarantees that any walk from the root ends at a leaf.
    """
    n_nodes = len(internal)
    if n_nodes == 0:
        raise _bad(where, "has no nodes")
    if not (len(left) == len(right) == len(feature) == n_nodes):
        raise _bad(where, "has node arrays of different lengths")
    mask = np.asarray(internal, dtype=bool)
    children = np.concatenate([np.asarray(left)[mask], np.asarray(right)[mask]]).astype(np.int64)
    if children.size and (children.min() < 1 or children.max() >= n_nodes):
        raise _bad(where, "has a child index outside the tree")
    if np.unique(children).size != children.size:
        raise _bad(where, "has a node with two parents (not a tree)")
    features = np.asarray(feature)[mask].astype(np.int64)
    if features.size and (features.min() < 0 or features.max() >= n_features):
        raise _bad(where, f"splits on a feature outside 0..{n_features - 1}")


def _bad(where: str, what: str) -> Invalid:
    return Invalid(f"{where} {what}; the file is corrupt or crafted", code="model_invalid")
