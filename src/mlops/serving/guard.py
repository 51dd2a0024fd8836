"""The canary guard: error rate and p95 latency over a sliding time window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np

from mlops.deployments.schemas import Guard

# The p95 needs the whole window (a sort); it is recomputed at most this often, while the
# error rate, kept as a running count, is checked on every request.
P95_CHECK_SECONDS = 0.25


class GuardMonitor:
    """Feed it every canary request; ``breach()`` says which limit, if any, is broken."""

    def __init__(self, guard: Guard, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.guard = guard
        self._clock = clock
        self._samples: deque[tuple[float, float, bool]] = deque()  # (time, seconds, failed)
        self._failures = 0
        self._p95_checked_at = float("-inf")
        self.tripped = False

    def record(self, seconds: float, failed: bool) -> None:
        now = self._clock()
        self._samples.append((now, seconds, failed))
        self._failures += failed
        horizon = now - self.guard.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._failures -= self._samples.popleft()[2]

    def breach(self) -> str | None:
        count = len(self._samples)
        if self.tripped or count < self.guard.min_requests:
            return None
        error_rate = self._failures / count
        if error_rate > self.guard.max_error_rate:
            return (
                f"error rate {error_rate:.2%} over the last {count} requests exceeds "
                f"{self.guard.max_error_rate:.2%}"
            )
        now = self._clock()
        if now - self._p95_checked_at < P95_CHECK_SECONDS:
            return None
        self._p95_checked_at = now
        p95_ms = float(np.percentile([s for _, s, _ in self._samples], 95)) * 1000
        if p95_ms > self.guard.max_p95_ms:
            return (
                f"p95 latency {p95_ms:.1f} ms over the last {count} requests exceeds "
                f"{self.guard.max_p95_ms:g} ms"
            )
        return None
