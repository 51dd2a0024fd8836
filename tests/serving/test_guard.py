"""The canary guard's arithmetic: running error rate, sliding window, throttled p95."""

from __future__ import annotations

import pytest

from mlops.deployments.schemas import Guard
from mlops.serving import guard as guard_module
from mlops.serving.guard import GuardMonitor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_error_rate_counts_only_the_window(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_error_rate=0.1, window_s=10, min_requests=10), clock=clock)
    for _ in range(5):
        monitor.record(0.001, True)
    clock.now += 11  # the failures leave the window
    for _ in range(20):
        monitor.record(0.001, False)
    assert monitor.breach() is None
    for _ in range(3):
        monitor.record(0.001, True)
    reason = monitor.breach()
    assert reason is not None and reason.startswith("error rate 13.04% over the last 23 requests")


def test_too_few_requests_never_breach(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_error_rate=0.0, min_requests=50), clock=clock)
    for _ in range(49):
        monitor.record(1.0, True)
    assert monitor.breach() is None


def test_p95_is_checked_at_most_every_quarter_second(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_p95_ms=50, min_requests=10), clock=clock)
    for _ in range(20):
        monitor.record(0.001, False)
    assert monitor.breach() is None  # p95 computed now: 1 ms
    for _ in range(20):
        monitor.record(0.2, False)
    assert monitor.breach() is None  # too soon to sort the window again
    clock.now += guard_module.P95_CHECK_SECONDS
    reason = monitor.breach()
    assert reason is not None and reason.startswith("p95 latency 200.0 ms over the last 40")
