"""How long a newcomer waits: the CLI's answers and the servers' starts, against
``import sklearn`` on the same machine in the same run (issue 10's yardstick).

    .venv/bin/python bench/startup_bench.py
    ROUNDS=9 .venv/bin/python bench/startup_bench.py
    .venv/bin/python bench/startup_bench.py --redis-url redis://127.0.0.1:6379/14 \\
        --database-url postgresql://postgres@127.0.0.1:5432/mlops_bench

Measured, each ROUNDS times (default 5), round by round so that a burst of load on a
shared machine hits every measurement alike, once with bytecode written as usual and
once with ``PYTHONDONTWRITEBYTECODE=1`` (as many container images set it; a warm-up
run first writes the bytecode, as an image built with ``UV_COMPILE_BYTECODE=1`` has it):

- ``python -c "import sklearn"``: the yardstick;
- ``mlops --help``, ``mlops models --help``: target <= 0.25x;
- ``mlops models list``, ``mlops models show demo``: client commands against a running
  ``mlops up`` (a token in MLOPS_URL/MLOPS_TOKEN): target <= 0.5x;
- ``mlops up``, ``mlops api``, ``mlops model-server``: from launch to ``/ready`` answering
  200 (the model server and ``up`` with the demo model loaded), then SIGTERM: target
  <= 1.5x. They run in development on a data dir that a first, unmeasured ``mlops up``
  prepared (migrations, admin, demo model, its verified ONNX conversion); with
  ``--database-url``/``--redis-url`` the three servers use PostgreSQL and Redis instead.

Prints medians and ratios; writes ``bench/results/startup-<UTC>/``: ``results.json``
(every run), ``summary.txt`` and the servers' logs. Exit 3 with ``--strict`` when a
target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    MLOPS,
    ROOT,
    free_port,
    machine_load,
    median,
    platform_env,
    post_json,
    running,
    start_server,
    timed_run,
)

MODES = {"bytecode written": {}, "PYTHONDONTWRITEBYTECODE=1": {"PYTHONDONTWRITEBYTECODE": "1"}}
YARDSTICK = "import sklearn"


@dataclass(frozen=True)
class Measurement:
    name: str
    target: float | None  # ratio to the yardstick, at most
    run: Callable[[dict[str, str]], float]  # seconds, given the mode's extra environment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "5")))
    parser.add_argument("--database-url", help="PostgreSQL for the measured servers")
    parser.add_argument("--redis-url", help="Redis for the measured servers")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    out = ROOT / "bench" / "results" / f"startup-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        return run(Path(tmp), out, args)


def run(tmp: Path, out: Path, args: argparse.Namespace) -> int:
    password = secrets.token_urlsafe(18)
    base = {"MLOPS_ADMIN_PASSWORD": password, "MLOPS_LOG_JSON": "false"}
    served = dict(base)
    if args.database_url:
        served["MLOPS_DATABASE_URL"] = args.database_url
    if args.redis_url:
        served["MLOPS_REDIS_URL"] = args.redis_url
    client_env = platform_env(tmp / "client-data", **base)
    server_env = platform_env(tmp / "server-data", **served)
    if args.database_url:
        timed_run([MLOPS, "db", "upgrade"], server_env)
    # The measured servers' data dir, prepared once: schema, admin, demo model, and the
    # demo's verified ONNX conversion in the model cache.
    note("preparing the servers' data dir (first mlops up, not measured)")
    port = free_port()
    start_server(
        [MLOPS, "up", "--port", str(port)], server_env, out / "first-up.log", port=port
    ).stop()

    note("starting the mlops up that the client commands talk to")
    port = free_port()
    with running(
        [MLOPS, "up", "--port", str(port)], client_env, out / "client-target.log", port=port
    ) as target:
        token = post_json(
            f"{target.url}/api/v1/auth/login", {"username": "admin", "password": password}
        )["access_token"]
        client = dict(
            client_env,
            MLOPS_URL=target.url,
            MLOPS_TOKEN=str(token),
            MLOPS_CREDENTIALS_FILE=str(tmp / "no-credentials.json"),
        )
        measurements = _measurements(client, server_env, out)
        results, loads = _measure(measurements, args.rounds)
    summary = _summary(measurements, results, loads, args)
    print(summary)
    (out / "summary.txt").write_text(summary)
    (out / "results.json").write_text(
        json.dumps({"seconds": results, "load before each round": loads}, indent=2)
    )
    note(f"results in {out.relative_to(ROOT)}")
    missed = "MISSED" in summary
    return 3 if args.strict and missed else 0


def _measurements(client: dict[str, str], server: dict[str, str], out: Path) -> list[Measurement]:
    def command(args: list[str], env: dict[str, str]) -> Callable[[dict[str, str]], float]:
        return lambda extra: timed_run(args, {**env, **extra})

    def to_ready(verb: str) -> Callable[[dict[str, str]], float]:
        def once(extra: dict[str, str]) -> float:
            port = free_port()
            server_args = [MLOPS, verb, "--port", str(port)]
            log = out / f"{verb}.log"
            started = start_server(server_args, {**server, **extra}, log, port=port)
            started.stop()
            return started.seconds_to_ready

        return once

    return [
        Measurement(YARDSTICK, None, command([sys.executable, "-c", "import sklearn"], client)),
        Measurement("mlops --help", 0.25, command([MLOPS, "--help"], client)),
        Measurement("mlops models --help", 0.25, command([MLOPS, "models", "--help"], client)),
        Measurement("mlops models list", 0.5, command([MLOPS, "models", "list"], client)),
        Measurement(
            "mlops models show demo", 0.5, command([MLOPS, "models", "show", "demo"], client)
        ),
        Measurement("mlops up -> /ready", 1.5, to_ready("up")),
        Measurement("mlops api -> /ready", 1.5, to_ready("api")),
        Measurement("mlops model-server -> /ready", 1.5, to_ready("model-server")),
    ]


Results = dict[str, dict[str, list[float]]]  # mode -> measurement -> seconds per round
Loads = dict[str, list[str]]  # mode -> the load average before each round


def _measure(measurements: list[Measurement], rounds: int) -> tuple[Results, Loads]:
    results: Results = {}
    all_loads: Loads = {}
    for mode, extra in MODES.items():
        note(f"{mode}: warm-up run of each measurement")
        for measurement in measurements:
            measurement.run(extra)
        runs: dict[str, list[float]] = {m.name: [] for m in measurements}
        loads: list[str] = []
        for round_no in range(1, rounds + 1):
            loads.append(machine_load())
            note(f"{mode}: round {round_no}/{rounds} ({loads[-1]})")
            for measurement in measurements:
                runs[measurement.name].append(measurement.run(extra))
        results[mode] = runs
        all_loads[mode] = loads
    return results, all_loads


def _summary(
    measurements: list[Measurement], results: Results, loads: Loads, args: argparse.Namespace
) -> str:
    shape = "PostgreSQL" if args.database_url else "SQLite"
    shape += " + Redis" if args.redis_url else ", in-process state"
    lines = [
        f"startup_bench: {args.rounds} rounds per mode; servers on {shape}; "
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs",
        "",
    ]
    header = f"{'measurement':32} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7}  target"
    for mode in MODES:
        runs = results[mode]
        yardstick = median(runs[YARDSTICK])
        lines += [f"[{mode}]", header]
        for measurement in measurements:
            values = runs[measurement.name]
            ratio = median(values) / yardstick
            if measurement.target is None:
                verdict = "(yardstick)"
            else:
                met = "met" if ratio <= measurement.target else "MISSED"
                verdict = f"<= {measurement.target:g}x: {met}"
            lines.append(
                f"{measurement.name:32} {median(values):9.2f} {min(values):7.2f} "
                f"{max(values):7.2f} {ratio:6.2f}x  {verdict}"
            )
        lines += ["load before each round: " + "; ".join(loads[mode]), ""]
    return "\n".join(lines)


def note(message: str) -> None:
    print(f"startup_bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
