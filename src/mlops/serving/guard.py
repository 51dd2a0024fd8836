"""The canary guard: error rate and p95 latency over a sliding time window.

What one caller controls must not decide alone whether a canary stays:

- Latency is the runtime's time per row over the batch a request ran in. A request's
  own time grows with its rows (the caller picks them) and with its wait behind other
  requests: 160 requests of 10,000 rows sent to a healthy canary (``X-Routing-Key``
  picks it) once made it look slow.
- One caller (a user, whichever token or API key they use) counts with at most its
  ``min_requests`` most recent requests in the window, so the more callers a canary
  has, the less any one of them weighs; a canary with one caller is judged on that
  caller's requests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

import numpy as np

from mlops.deployments.schemas import Guard

# The p95 needs the whole window (a sort); it is recomputed at most this often, while the
# error rate, kept as a running count, is checked on every request.
P95_CHECK_SECONDS = 0.25
# Other callers' samples leave the window at most this late (each caller's own leave
# whenever it sends a request).
SWEEP_SECONDS = 0.25

Caller = Hashable  # the user id; None for calls made inside the platform
_Sample = tuple[float, float, bool]  # (time, seconds per row, failed)


class GuardMonitor:
    """Feed it every canary request; ``breach()`` says which limit, if any, is broken."""

    def __init__(self, guard: Guard, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.guard = guard
        self._clock = clock
        self._by_caller: dict[Caller, deque[_Sample]] = {}
        self._count = 0
        self._failures = 0
        self._swept_at = float("-inf")
        self._p95_checked_at = float("-inf")
        self.tripped = False

    def record(self, seconds_per_row: float, failed: bool, caller: Caller = None) -> None:
        """One canary request: the runtime's seconds per row (ignored when it failed)."""
        now = self._clock()
        samples = self._by_caller.get(caller)
        if samples is None:
            samples = self._by_caller[caller] = deque()
        samples.append((now, seconds_per_row, failed))
        self._count += 1
        self._failures += failed
        if len(samples) > self.guard.min_requests:
            self._forget(samples.popleft())
        horizon = now - self.guard.window_s
        self._expire(samples, horizon)
        if now - self._swept_at >= SWEEP_SECONDS:
            self._swept_at = now
            for key, others in list(self._by_caller.items()):
                self._expire(others, horizon)
                if not others:
                    del self._by_caller[key]

    def _expire(self, samples: deque[_Sample], horizon: float) -> None:
        while samples and samples[0][0] < horizon:
            self._forget(samples.popleft())

    def _forget(self, sample: _Sample) -> None:
        self._count -= 1
        self._failures -= sample[2]

    def breach(self) -> str | None:
        count = self._count
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
        latencies = [
            seconds
            for samples in self._by_caller.values()
            for _, seconds, failed in samples
            if not failed
        ]
        if not latencies:
            return None
        p95_ms = float(np.percentile(latencies, 95)) * 1000
        if p95_ms > self.guard.max_p95_ms:
            return (
                f"p95 latency per row {p95_ms:.3g} ms over the last {len(latencies)} "
                f"requests exceeds {self.guard.max_p95_ms:g} ms"
            )
        return None
