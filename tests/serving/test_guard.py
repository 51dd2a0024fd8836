"""The canary guard's arithmetic: running error rate, sliding window, throttled p95,
latency per row, and the bound on one caller's weight."""

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
    # Each request from another caller: the bound on one caller's weight stays out of it.
    monitor = GuardMonitor(Guard(max_error_rate=0.1, window_s=10, min_requests=10), clock=clock)
    for i in range(5):
        monitor.record(0.001, True, caller=i)
    clock.now += 11  # the failures leave the window
    for i in range(20):
        monitor.record(0.001, False, caller=100 + i)
    assert monitor.breach() is None
    for i in range(3):
        monitor.record(0.001, True, caller=200 + i)
    reason = monitor.breach()
    assert reason is not None and reason.startswith("error rate 13.04% over the last 23 requests")


def test_too_few_requests_never_breach(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_error_rate=0.0, min_requests=50), clock=clock)
    for i in range(49):
        monitor.record(1.0, True, caller=i)
    assert monitor.breach() is None


def test_p95_is_checked_at_most_every_quarter_second(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_p95_ms=50, min_requests=10), clock=clock)
    for i in range(20):
        monitor.record(0.001, False, caller=i)
    assert monitor.breach() is None  # p95 computed now: 1 ms
    for i in range(20):
        monitor.record(0.2, False, caller=100 + i)
    assert monitor.breach() is None  # too soon to sort the window again
    clock.now += guard_module.P95_CHECK_SECONDS
    reason = monitor.breach()
    assert reason is not None and reason.startswith("p95 latency per row 200 ms over the last 40")


def test_one_caller_counts_with_its_most_recent_min_requests(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_error_rate=0.2, min_requests=10), clock=clock)
    for _ in range(1000):  # a flood of failures from one caller...
        monitor.record(0.0, True, caller="flood")
        clock.now += 0.001
    for _ in range(10):  # ...then it behaves: only its last 10 count
        monitor.record(0.001, False, caller="flood")
    assert monitor.breach() is None
    for caller in range(40):  # many callers, each well behaved
        for _ in range(10):
            monitor.record(0.001, False, caller=caller)
    for _ in range(10):  # the flood's 10 failures are 10 of 410 requests: 2.4%
        monitor.record(0.0, True, caller="flood")
    assert monitor.breach() is None
    monitor.record(0.0, True, caller=7)
    monitor.record(0.0, True, caller=8)  # still 12 of 410: other callers fail too
    assert monitor.breach() is None


def test_one_slow_caller_cannot_set_the_p95_of_many(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_p95_ms=5, min_requests=20), clock=clock)
    for caller in range(30):
        for _ in range(20):
            monitor.record(0.0001, False, caller=caller)
    for _ in range(5000):
        monitor.record(0.5, False, caller="slow")  # 20 of 620 samples: under 5%
    assert monitor.breach() is None


def test_a_canary_with_one_caller_is_still_judged(clock: Clock) -> None:
    failing = GuardMonitor(Guard(max_error_rate=0.05, min_requests=20), clock=clock)
    for _ in range(20):
        failing.record(0.0, True, caller=1)
    reason = failing.breach()
    assert reason is not None and reason.startswith("error rate 100.00% over the last 20")
    slow = GuardMonitor(Guard(max_p95_ms=5, min_requests=20), clock=clock)
    for _ in range(20):
        slow.record(0.010, False, caller=1)
    reason = slow.breach()
    assert reason is not None and reason.startswith("p95 latency per row 10 ms over the last 20")


def test_failed_requests_count_in_the_error_rate_not_the_p95(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_error_rate=0.5, max_p95_ms=5, min_requests=10), clock=clock)
    for _ in range(10):
        monitor.record(0.001, False, caller=1)
    for _ in range(5):
        monitor.record(99.0, True, caller=2)  # a failure's time says nothing about speed
    assert monitor.breach() is None


def test_other_callers_samples_leave_the_window(clock: Clock) -> None:
    monitor = GuardMonitor(Guard(max_error_rate=0.1, window_s=10, min_requests=10), clock=clock)
    for _ in range(10):
        monitor.record(0.001, True, caller="gone")
    clock.now += 11
    for _ in range(10):
        monitor.record(0.001, False, caller="here")
    assert monitor.breach() is None
