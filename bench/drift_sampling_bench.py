"""What drift sampling costs a prediction request (issue: background workers).

The model server calls ``DriftSampler.offer`` once per request, after the answer is
computed (``mlops.serving.dataplane``: ``if self.sampler is not None``). This times,
per call, in a loop pinned to one core:

- ``none``: the data plane's test with no sampler (``MLOPS_DRIFT_SAMPLE_RATE=0``);
- ``rate 0.01``: the shipped default (1 % of requests copy their rows);
- ``rate 1.0``: every request sampled (the copy's cost), under the per-minute cap;

each the best of ``REPEATS`` runs of ``CALLS`` calls with a 1-row request of the demo
model's 5 features, and the same loop around an empty function (``loop``), whose cost
is subtracted. Nothing is written: the sampler's writes run off the request path.

    uv run python bench/drift_sampling_bench.py          # CALLS=1000000 REPEATS=5 CPU=0
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from mlops.modelformats import Signature
from mlops.serving.catalog import VersionSpec
from mlops.serving.sampling import DriftSampler

CALLS = int(os.environ.get("CALLS", 1_000_000))
REPEATS = int(os.environ.get("REPEATS", 5))
CPU = int(os.environ.get("CPU", 0))


class _NoStore:
    """The sampler never writes during the timing (no flush is started)."""


def _spec() -> VersionSpec:
    signature = Signature(
        n_features=5,
        feature_names=None,
        input_dtype="float32",
        output_kind="class_labels",
        classes=[0, 1],
        has_probabilities=True,
    )
    return VersionSpec("demo", 1, "onnx", "demo.onnx", "k", "0" * 64, signature, {})


class _Plane:
    """The data plane's call site, as written there."""

    def __init__(self, sampler: DriftSampler | None) -> None:
        self.sampler = sampler

    def after_answer(self, spec: VersionSpec, x: np.ndarray, values: np.ndarray) -> None:
        if self.sampler is not None:
            self.sampler.offer(spec, x, values)


def _empty(spec: VersionSpec, x: np.ndarray, values: np.ndarray) -> None:
    return None


def _per_call_ns(call: Callable[[VersionSpec, np.ndarray, np.ndarray], None]) -> float:
    spec = _spec()
    x = np.ones((1, 5), dtype=np.float32)
    values = np.zeros(1, dtype=np.int64)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        for _ in range(CALLS):
            call(spec, x, values)
        best = min(best, (time.perf_counter_ns() - start) / CALLS)
    return best


def _sampler(rate: float) -> DriftSampler:
    # A per-minute cap high enough that every sampled request copies its rows.
    return DriftSampler(_NoStore(), rate=rate, per_minute=10**12)  # type: ignore[arg-type]


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CPU})
    load = os.getloadavg()
    loop = _per_call_ns(_empty)
    rows = {
        "none": _per_call_ns(_Plane(None).after_answer),
        "rate 0.01": _per_call_ns(_Plane(_sampler(0.01)).after_answer),
        "rate 1.0": _per_call_ns(_Plane(_sampler(1.0)).after_answer),
    }
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; core {CPU}")
    print(f"{CALLS:,} calls, best of {REPEATS}; the empty loop's {loop:.0f} ns/call subtracted")
    for name, ns in rows.items():
        print(f"{name:>10}: {max(0.0, ns - loop):7.0f} ns per request")


if __name__ == "__main__":
    main()
