"""A load test of a running platform, on Locust used as a library (ADR 0011):

    cd tests/performance
    python load_test.py --target https://api.mlops-platform.com --concurrent 50 --duration 300

Users log in (MLOPS_API_KEY, or MLOPS_USERNAME and MLOPS_PASSWORD) and then mostly
predict with the default model (the guide's request), sometimes read the registry,
and now and then log in again, weighted like production traffic. At the end it prints
throughput, p50/p95/p99 per request type and the error rate, compares them with the
guide's thresholds (API p95 < 100 ms, model inference p95 < 50 ms, error rate < 1 %),
writes report.json and report.html, and exits 1 when a threshold is missed.

One machine not enough? The file is also a locustfile for Locust's distributed mode:
``locust -f load_test.py --master --headless -u 500 -r 50 -t 5m --host URL`` on one
machine and ``locust -f load_test.py --worker --master-host=HOST`` on each other.
"""

from __future__ import annotations

# Locust patches the standard library with gevent when imported: nothing here imports
# ssl, sockets or an HTTP client before it.
import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import HttpUser, LoadTestShape, between, task
from locust.env import Environment
from locust.html import get_html_report

GUIDE_ROWS = [[1, 2, 3, 4, 5]]
PREDICT = "predict"
THRESHOLDS = {"api_p95_ms": 100.0, "inference_p95_ms": 50.0, "error_rate": 0.01}


class PlatformUser(HttpUser):
    """One client of the platform, authenticated for its whole life."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.credential = os.environ.get("MLOPS_API_KEY") or self._login() or ""

    def _login(self) -> str | None:
        username, password = os.environ.get("MLOPS_USERNAME"), os.environ.get("MLOPS_PASSWORD")
        if not username or not password:
            return None
        with self.client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": password},
            name="login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login: HTTP {response.status_code}")
                return None
            token: str = response.json()["access_token"]
            return token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    @task(16)
    def predict(self) -> None:
        self.client.post(
            "/api/v1/models/predict", json={"data": GUIDE_ROWS}, headers=self.auth, name=PREDICT
        )

    @task(3)
    def registry_read(self) -> None:
        self.client.get("/api/v1/models", headers=self.auth, name="registry: list models")

    @task(1)
    def login_again(self) -> None:
        if os.environ.get("MLOPS_API_KEY"):
            self.client.get("/api/v1/users/me", headers=self.auth, name="whoami")
        else:
            self.credential = self._login() or self.credential


def shape_for(profile: str, users: int, duration: float, ramp: float) -> LoadTestShape | None:
    """``steady``: ramp to the users and hold. ``spike``: a fifth of them, all of them
    for the middle fifth of the run, then a fifth again. ``soak``: steady over a long
    run (give a long --duration) with a gentle ramp."""
    if profile == "steady":
        return None
    low = max(1, users // 5)

    class Spike(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            now = self.get_run_time()  # type: ignore[no-untyped-call]
            if now >= duration:
                return None
            peak = 0.4 * duration <= now < 0.6 * duration
            return (users, float(users)) if peak else (low, float(users))

    class Soak(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            now = self.get_run_time()  # type: ignore[no-untyped-call]
            if now >= duration:
                return None
            return users, max(1.0, users / max(ramp, duration / 10))

    shapes: dict[str, type[LoadTestShape]] = {"spike": Spike, "soak": Soak}
    return shapes[profile]()


def summarize(env: Environment, elapsed: float, limits: dict[str, float]) -> dict[str, Any]:
    stats = env.stats
    by_type = {}
    for (name, method), entry in sorted(stats.entries.items()):
        by_type[f"{method} {name}"] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "throughput_rps": entry.num_requests / elapsed if elapsed else 0.0,
            "p50_ms": entry.get_response_time_percentile(0.50),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
        }
    total = stats.total
    predict = next((e for (n, _), e in stats.entries.items() if n == PREDICT), None)
    error_rate = total.num_failures / total.num_requests if total.num_requests else 1.0
    measured = {
        "api_p95_ms": float(total.get_response_time_percentile(0.95) or 0.0),
        "inference_p95_ms": float(predict.get_response_time_percentile(0.95) or 0.0)
        if predict
        else float("inf"),
        "error_rate": error_rate,
    }
    missed = [k for k, limit in limits.items() if not measured[k] < limit]
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "throughput_rps": total.num_requests / elapsed if elapsed else 0.0,
        "duration_s": elapsed,
        "measured": measured,
        "thresholds": limits,
        "missed": missed,
        "by_type": by_type,
        "errors": [
            {"name": e.name, "error": str(e.error), "count": e.occurrences}
            for e in stats.errors.values()
        ],
    }


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"{'request type':<34} {'reqs':>7} {'fail':>6} {'rps':>8} {'p50':>7} {'p95':>7} {'p99':>7}"
    )
    for name, row in summary["by_type"].items():
        print(
            f"{name:<34} {row['requests']:>7} {row['failures']:>6} {row['throughput_rps']:>8.1f} "
            f"{row['p50_ms']:>7.0f} {row['p95_ms']:>7.0f} {row['p99_ms']:>7.0f}"
        )
    m, t = summary["measured"], summary["thresholds"]
    print(
        f"throughput: {summary['throughput_rps']:.1f} requests/s over {summary['duration_s']:.0f} s"
    )
    print(f"API p95: {m['api_p95_ms']:.1f} ms (threshold < {t['api_p95_ms']:g} ms)")
    inference, limit = m["inference_p95_ms"], t["inference_p95_ms"]
    print(f"model inference p95: {inference:.1f} ms (threshold < {limit:g} ms)")
    print(f"error rate: {m['error_rate']:.2%} (threshold < {t['error_rate']:.2%})")
    print("PASS" if not summary["missed"] else f"FAIL: missed {', '.join(summary['missed'])}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", required=True, help="the platform's URL")
    p.add_argument("--concurrent", type=int, default=50, help="simulated users")
    p.add_argument("--duration", type=float, default=300, help="seconds")
    p.add_argument("--ramp", type=float, default=10, help="seconds to reach --concurrent")
    p.add_argument("--profile", choices=("steady", "spike", "soak"), default="steady")
    p.add_argument("--report-dir", type=Path, default=Path("load-test-report"))
    p.add_argument("--max-p95-ms", type=float, default=THRESHOLDS["api_p95_ms"])
    p.add_argument("--max-inference-p95-ms", type=float, default=THRESHOLDS["inference_p95_ms"])
    p.add_argument("--max-error-rate", type=float, default=THRESHOLDS["error_rate"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.concurrent < 1 or args.duration <= 0:
        sys.exit("--concurrent must be at least 1 and --duration positive")
    shape = shape_for(args.profile, args.concurrent, args.duration, args.ramp)
    env = Environment(user_classes=[PlatformUser], host=args.target.rstrip("/"), shape_class=shape)
    runner = env.create_local_runner()
    started = gevent.get_hub().loop.now()
    if shape is None:
        runner.start(args.concurrent, spawn_rate=args.concurrent / max(args.ramp, 0.001))
    else:
        runner.start_shape()
    # A shape's end only stops the users; quitting ends the runner either way.
    gevent.spawn_later(args.duration, runner.quit)
    assert runner.greenlet is not None
    runner.greenlet.join()
    elapsed = gevent.get_hub().loop.now() - started
    limits = {
        "api_p95_ms": args.max_p95_ms,
        "inference_p95_ms": args.max_inference_p95_ms,
        "error_rate": args.max_error_rate,
    }
    summary = summarize(env, elapsed, limits)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "report.json").write_text(json.dumps(summary, indent=2))
    (args.report_dir / "report.html").write_text(get_html_report(env, show_download_link=False))  # type: ignore[no-untyped-call]
    print_summary(summary)
    print(f"reports: {args.report_dir / 'report.json'}, {args.report_dir / 'report.html'}")
    return 1 if summary["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
