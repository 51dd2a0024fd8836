"""Population stability index and the Kolmogorov-Smirnov statistic, against a profile.

A profile keeps what comparing needs, as JSON: for a numeric feature the inner edges
of ten equal-count bins of the reference and each bin's share, plus 1,001 quantiles
that stand in for the reference's distribution in the KS statistic; for a categorical
one (at most 20 distinct whole numbers, or labels) each category's share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 10
CATEGORICAL_MAX = 20
QUANTILES = 1001
# An empty bin would make the index infinite; a small floor keeps it finite and large.
FLOOR = 1e-4
DRIFT_PSI = 0.2


def profile(values: np.ndarray) -> dict[str, Any]:
    """The profile of one feature (or of predictions) of the reference data."""
    if values.dtype.kind not in "iuf":
        return _categorical(np.asarray(values).astype(str))
    values = values[np.isfinite(values)].astype(np.float64)
    if len(values) == 0:
        return {"kind": "empty"}
    distinct = np.unique(values)
    if len(distinct) <= CATEGORICAL_MAX and np.array_equal(distinct, np.round(distinct)):
        return _categorical(values)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "shares": _shares(np.searchsorted(edges, values, side="right"), len(edges) + 1),
        "quantiles": np.quantile(values, np.linspace(0, 1, QUANTILES)).tolist(),
    }


def _categorical(values: np.ndarray) -> dict[str, Any]:
    categories, counts = np.unique(values, return_counts=True)
    return {
        "kind": "categorical",
        "categories": [_label(c) for c in categories.tolist()],
        "shares": (counts / counts.sum()).tolist(),
    }


def _label(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shares(bins: np.ndarray, count: int) -> list[float]:
    counts = np.bincount(bins, minlength=count).astype(np.float64)
    shares: list[float] = (counts / max(counts.sum(), 1.0)).tolist()
    return shares


def psi(expected: list[float], actual: list[float]) -> float:
    e = np.clip(np.asarray(expected, dtype=np.float64), FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(reference: dict[str, Any], live: np.ndarray) -> dict[str, Any]:
    """``{"kind", "psi", "ks"?}`` of live values against a reference profile."""
    kind = reference["kind"]
    if kind == "empty":
        return {"kind": kind, "psi": None}
    if kind == "categorical":
        categories = reference["categories"]
        if live.dtype.kind in "iuf":
            keys = [_label(v) for v in live[np.isfinite(live)].astype(np.float64).tolist()]
        else:
            keys = live.astype(str).tolist()
        index = {c: i for i, c in enumerate(categories)}
        # Values the reference never had share one extra bucket.
        bins = np.array([index.get(k, len(categories)) for k in keys], dtype=np.int64)
        actual = _shares(bins, len(categories) + 1)
        return {"kind": kind, "psi": psi([*reference["shares"], 0.0], actual)}
    values = live[np.isfinite(live)].astype(np.float64)
    edges = np.asarray(reference["edges"])
    actual = _shares(np.searchsorted(edges, values, side="right"), len(edges) + 1)
    return {
        "kind": kind,
        "psi": psi(reference["shares"], actual),
        "ks": ks_statistic(np.asarray(reference["quantiles"]), values),
    }


def ks_statistic(reference_quantiles: np.ndarray, values: np.ndarray) -> float:
    """The largest gap between the two empirical distribution functions."""
    if len(values) == 0:
        return 0.0
    live = np.sort(values)
    points = np.concatenate([reference_quantiles, live])
    f_reference = np.searchsorted(reference_quantiles, points, side="right") / len(
        reference_quantiles
    )
    f_live = np.searchsorted(live, points, side="right") / len(live)
    return float(np.max(np.abs(f_reference - f_live)))
