"""Soak benchmark (issue 16, section 5): mixed authenticated traffic at 50 connections
for DURATION seconds against the embedded platform (``mlops up``: SQLite, in-process
cache, local files) and the PostgreSQL + Redis + S3 shape (``mlops api`` and
``mlops model-server`` on a throwaway database, a Redis namespace and SeaweedFS).

Per shape, the platform's processes pinned to SERVER_CPU and the load to LOAD_CPU, all
at once for DURATION seconds after a warm-up:

- predictions: wrk, PREDICT_CONNECTIONS (40) connections, closed loop, one row, an API key;
- registry reads: wrk, READ_CONNECTIONS (8) split over the models list, one model and
  its versions, a login token;
- logins: hey, LOGIN_CONNECTIONS (2) workers at LOGIN_RATE (1) per worker and second;
- an alias move every ALIAS_EVERY (30) s: ``production`` between versions 1 and 2 of
  the model the predictions use, timed until predictions answer from the new version.

Goals (STRICT=1: exit 3 when one is missed): errors under 0.1 % of the requests; each
platform process's RSS grows under 10 % from the end of the warm-up to the end; no
table, Redis key family or storage prefix grows by more than the writes the run made
(alias moves and logins), so nothing grows with read traffic. Options, outputs and
figures: bench/README.md and docs/performance.md.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    ROOT,
    LoadResult,
    ensure_tools,
    hey_command,
    log,
    machine_load,
    parse_hey,
    parse_wrk,
    pinned,
    source_env,
    stop_group,
    wrk_command,
    wrk_script,
)
from soak_report import report
from soak_shapes import SHAPES, Platform
from soak_state import Snapshot

MODEL = "demo"
ROW = "[[0.5, -1.2, 3.3, 0.1, -0.7]]"
SAMPLE_EVERY = 10.0  # seconds between RSS samples during the soak
VISIBLE_WITHIN = 10.0  # an alias move not seen by predictions after this long is an error
READY_WITHIN = 120.0  # the first prediction after set-up


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise SystemExit(f"{name} must be a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    shapes: tuple[str, ...]
    predict_connections: int
    read_connections: int
    login_connections: int
    login_rate: int
    alias_every: int
    server_cpu: int
    load_cpu: int
    source: str
    strict: bool

    @classmethod
    def from_env(cls) -> Options:
        return cls(
            duration=env_int("DURATION", 300),
            warmup=env_int("WARMUP", 30),
            shapes=tuple(os.environ.get("SHAPES", "embedded,postgres").split(",")),
            predict_connections=env_int("PREDICT_CONNECTIONS", 40),
            read_connections=env_int("READ_CONNECTIONS", 8),
            login_connections=env_int("LOGIN_CONNECTIONS", 2),
            login_rate=env_int("LOGIN_RATE", 1),
            alias_every=env_int("ALIAS_EVERY", 30),
            server_cpu=env_int("SERVER_CPU", 0),
            load_cpu=env_int("LOAD_CPU", 1),
            source=os.environ.get("SOURCE", "tree"),
            strict=env_int("STRICT", 0) == 1,
        )

    def check(self) -> None:
        unknown = set(self.shapes) - {"embedded", "postgres"}
        if unknown:
            raise SystemExit(f"SHAPES: unknown {sorted(unknown)}; use embedded,postgres")
        if not 10 <= self.duration <= 7200 or not 1 <= self.warmup <= 600:
            raise SystemExit("DURATION must be 10..7200 s and WARMUP 1..600 s")
        if self.read_connections < 3 or self.predict_connections < 1:
            raise SystemExit("READ_CONNECTIONS must be at least 3, PREDICT_CONNECTIONS 1")
        if self.login_connections < 1 or self.login_rate < 1 or self.alias_every < 5:
            raise SystemExit("LOGIN_CONNECTIONS, LOGIN_RATE >= 1 and ALIAS_EVERY >= 5 s")
        cpus = os.cpu_count() or 1
        if self.server_cpu == self.load_cpu or max(self.server_cpu, self.load_cpu) >= cpus:
            raise SystemExit(f"SERVER_CPU and LOAD_CPU must be two different cores below {cpus}")


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    server: str  # "api" or "model"
    connections: int
    body: str | None = None


def routes(opts: Options) -> list[Route]:
    reads = opts.read_connections
    per_read = [reads // 3 + (1 if i < reads % 3 else 0) for i in range(3)]
    return [
        Route("predict", "POST", f"/api/v1/models/{MODEL}/predict", "model",
              opts.predict_connections, f'{{"data": {ROW}}}'),
        Route("models list", "GET", "/api/v1/models", "api", per_read[0]),
        Route("model show", "GET", f"/api/v1/models/{MODEL}", "api", per_read[1]),
        Route("versions list", "GET", f"/api/v1/models/{MODEL}/versions", "api", per_read[2]),
        Route("login", "POST", "/api/v1/auth/login", "api", opts.login_connections),
    ]  # fmt: skip


@dataclass
class Credentials:
    login_body: str
    token: str  # a viewer's login token: registry reads
    api_key: str  # that viewer's API key: predictions
    admin: str  # an admin's Authorization header: alias moves


@dataclass
class AliasMove:
    at: float  # seconds into the soak
    version: int
    put_ms: float
    visible_ms: float | None  # until a prediction answered from the new version
    error: str = ""


@dataclass
class ShapeResult:
    shape: str
    settings: dict[str, str]
    source: str
    routes: dict[str, LoadResult]
    connections: dict[str, int]
    moves: list[AliasMove]
    start: Snapshot
    end: Snapshot
    timeline: list[tuple[float, dict[str, int]]]  # (seconds into the soak, RSS by process)
    load: dict[str, str]
    rss_before_warmup: dict[str, int] = field(default_factory=dict)
    log_lines: dict[str, dict[str, int]] = field(default_factory=dict)


def note(message: str) -> None:
    log("soak_bench", message)


# ----------------------------------------------------------------------------- set-up


def prepare(platform: Platform, tmp: Path) -> Credentials:
    """Two versions of the model (``production`` on 1), a viewer, its token and API key."""
    from mlops.client import Client, ClientError
    from mlops.modelformats import build_demo_model

    api = platform.api_url
    admin_login = {"username": "admin", "password": platform.admin_password}
    admin = f"Bearer {call(api, 'POST', '/api/v1/auth/login', None, admin_login)['access_token']}"
    with Client(api, admin.removeprefix("Bearer "), timeout=120) as client:
        try:
            have = int(client.list_versions(MODEL)["total"])
        except ClientError as exc:  # the PostgreSQL shape starts with no model
            if exc.status_code != 404:
                raise
            have = 0
        artifact = build_demo_model(tmp)
        for _ in range(have, 2):
            client.push(artifact, MODEL)
        client.set_alias(MODEL, "production", 1)
    password = secrets.token_urlsafe(18)
    viewer = {"username": "soak-viewer", "password": password}
    call(api, "POST", "/api/v1/users", admin, {**viewer, "role": "viewer"})
    token = str(call(api, "POST", "/api/v1/auth/login", None, viewer)["access_token"])
    key = call(api, "POST", "/api/v1/api-keys", f"Bearer {token}", {"name": "soak-predict"})
    return Credentials(json.dumps(viewer), token, str(key["key"]), admin)


def call(url: str, method: str, path: str, auth: str | None, body: Any = None) -> dict[str, Any]:
    headers = {"Authorization": auth} if auth else {}
    response = httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=60)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def served_version(platform: Platform, creds: Credentials) -> tuple[int | None, str]:
    """The version a prediction answers from, or None and why not (say, still loading)."""
    response = httpx.post(
        f"{platform.model_url}/api/v1/models/{MODEL}/predict",
        content=f'{{"data": {ROW}}}',
        headers={"Authorization": f"Bearer {creds.api_key}", "Content-Type": "application/json"},
        timeout=VISIBLE_WITHIN,
    )
    if response.status_code != 200:
        return None, f"{response.status_code} {response.text[:300]}"
    return int(response.headers["X-Model-Version"]), ""


def wait_for_version(platform: Platform, creds: Credentials, version: int, within: float) -> None:
    """Poll predictions until they answer from ``version``; TimeoutError after ``within`` s."""
    deadline = time.perf_counter() + within
    while True:
        served, why = served_version(platform, creds)
        if served == version:
            return
        if time.perf_counter() > deadline:
            seen = why or f"version {served}"
            raise TimeoutError(f"predictions not on version {version} after {within:g} s: {seen}")
        time.sleep(0.02)


def move_alias(
    platform: Platform, creds: Credentials, version: int, at: float, within: float = VISIBLE_WITHIN
) -> AliasMove:
    """PUT the alias as the admin, then poll predictions until they use ``version``."""
    path = f"/api/v1/models/{MODEL}/aliases/production"
    start = time.perf_counter()
    try:
        call(platform.api_url, "PUT", path, creds.admin, {"version": version})
        put = time.perf_counter()
        wait_for_version(platform, creds, version, within)
        seen = time.perf_counter()
        return AliasMove(at, version, (put - start) * 1000, (seen - put) * 1000)
    except Exception as exc:  # noqa: BLE001 - every failure is a counted error of the run
        elapsed = (time.perf_counter() - start) * 1000
        return AliasMove(at, version, elapsed, None, f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- the load


Traffic = list[tuple[Route, "subprocess.Popen[bytes]", Path]]


def start_traffic(
    platform: Platform, creds: Credentials, opts: Options, seconds: int, out: Path, tag: str
) -> Traffic:
    """One load generator per route, all pinned to LOAD_CPU, each writing its report."""
    traffic: Traffic = []
    for route in routes(opts):
        base = platform.model_url if route.server == "model" else platform.api_url
        slug = route.name.replace(" ", "-")
        if route.name == "login":
            args = hey_command(
                base + route.path, connections=route.connections,
                per_connection_rps=opts.login_rate, seconds=seconds, headers={},
                method="POST", json_body=creds.login_body,
            )  # fmt: skip
        else:
            bearer = creds.api_key if route.server == "model" else creds.token
            script = wrk_script(out / f"{slug}.lua", method=route.method, json_body=route.body)
            args = wrk_command(
                base + route.path, script=script, connections=route.connections,
                seconds=seconds, headers={"Authorization": f"Bearer {bearer}"},
            )  # fmt: skip
        report_file = out / f"{platform.shape}-{tag}-{slug}.txt"
        with report_file.open("wb") as sink:
            process = subprocess.Popen(
                pinned(opts.load_cpu, args), stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        traffic.append((route, process, report_file))
    return traffic


def finish_traffic(traffic: Traffic, seconds: int) -> dict[str, LoadResult]:
    """Wait for every generator (ending all of them on any failure); their results."""
    results: dict[str, LoadResult] = {}
    try:
        for route, process, report_file in traffic:
            process.wait(timeout=seconds + 120)
            text = report_file.read_text(errors="replace")
            if process.returncode != 0:
                raise RuntimeError(f"{route.name}: exited {process.returncode}: {text[-1500:]}")
            results[route.name] = parse_hey(text) if route.name == "login" else parse_wrk(text)
    finally:
        for _, process, _ in traffic:
            stop_group(process)
    return results


def soak(
    platform: Platform, creds: Credentials, opts: Options, out: Path
) -> tuple[dict[str, LoadResult], list[AliasMove], list[tuple[float, dict[str, int]]]]:
    """The measured run: the load, an alias move every ALIAS_EVERY s from half of it,
    and the platform processes' RSS every SAMPLE_EVERY s."""
    traffic = start_traffic(platform, creds, opts, opts.duration, out, "soak")
    start = time.perf_counter()
    moves: list[AliasMove] = []
    timeline: list[tuple[float, dict[str, int]]] = []
    next_move, next_sample, version = opts.alias_every / 2, 0.0, 1
    try:
        while (elapsed := time.perf_counter() - start) < opts.duration:
            if elapsed >= next_sample:
                timeline.append((round(elapsed, 1), platform.probe.rss()))
                next_sample += SAMPLE_EVERY
            if elapsed >= next_move:
                next_move += opts.alias_every
                if elapsed <= opts.duration - VISIBLE_WITHIN:  # seen before the load ends
                    version = 3 - version
                    moves.append(move_alias(platform, creds, version, round(elapsed, 1)))
                    if moves[-1].error:
                        note(f"alias move at {elapsed:.0f} s failed: {moves[-1].error}")
            time.sleep(max(0.05, min(next_sample, next_move) - (time.perf_counter() - start)))
    finally:
        results = finish_traffic(traffic, opts.duration)
    if version != 1:  # leave the alias where the run found it (a write: counted)
        moves.append(move_alias(platform, creds, 1, opts.duration))
    return results, moves, timeline


def run_shape(platform: Platform, opts: Options, tmp: Path, out: Path, source: str) -> ShapeResult:
    load = {"before the warm-up": machine_load()}
    creds = prepare(platform, tmp)
    # The first load of a version converts it to ONNX: slow on a busy machine.
    wait_for_version(platform, creds, 1, READY_WITHIN)
    rss_before_warmup = platform.probe.rss()
    note(f"{platform.shape}: warm-up: alias to 2 and back, then {opts.warmup} s of the load")
    for version in (2, 1):
        move = move_alias(platform, creds, version, 0.0, READY_WITHIN)
        if move.error:
            raise RuntimeError(f"warm-up alias move to {version}: {move.error}")
    warm = finish_traffic(start_traffic(platform, creds, opts, opts.warmup, out, "warmup"),
                          opts.warmup)  # fmt: skip
    for name, result in warm.items():
        if result.errors:
            note(
                f"{platform.shape}: warm-up: {name}: {result.errors} errors ({result.error_detail})"
            )
    start = platform.probe.snapshot()
    load["soak start"] = machine_load()
    note(f"{platform.shape}: soak, {opts.duration} s ({load['soak start']})")
    results, moves, timeline = soak(platform, creds, opts, out)
    load["soak end"] = machine_load()
    end = platform.probe.snapshot()
    note(f"{platform.shape}: done ({load['soak end']})")
    return ShapeResult(
        shape=platform.shape, settings=platform.settings, source=source, routes=results,
        connections={r.name: r.connections for r in routes(opts)}, moves=moves,
        start=start, end=end, timeline=timeline, load=load, rss_before_warmup=rss_before_warmup,
    )  # fmt: skip


def keep_logs(logs: dict[str, Path], out: Path, shape: str) -> dict[str, dict[str, int]]:
    """Count each server log's lines (access lines apart); keep all but the access lines
    of 2xx answers, which are most of a log of a million lines."""
    counts: dict[str, dict[str, int]] = {}
    for name, path in logs.items():
        kept: list[str] = []
        count = {"access": 0, "access, not 2xx": 0, "other": 0}
        with path.open(errors="replace") as lines:
            for line in lines:
                if '"mlops.access"' not in line:
                    count["other"] += 1
                    kept.append(line)
                elif '"status": 2' in line:
                    count["access"] += 1
                else:
                    count["access"] += 1
                    count["access, not 2xx"] += 1
                    kept.append(line)
        counts[name] = count
        (out / f"{shape}-{name.replace(' ', '-')}.log").write_text("".join(kept[-3000:]))
    return counts


def main() -> int:
    opts = Options.from_env()
    opts.check()
    ensure_tools("wrk", "hey", "taskset", "git")
    out = ROOT / "bench" / "results" / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True)
    shapes: list[ShapeResult] = []
    for shape in opts.shapes:
        with tempfile.TemporaryDirectory(prefix=f"soak-{shape}-") as name:
            tmp = Path(name)
            source, described = source_env(opts.source, tmp)
            note(f"{shape}: starting the platform ({described})")
            with SHAPES[shape](opts.server_cpu, tmp, source) as platform:
                result = run_shape(platform, opts, tmp, out, described)
            result.log_lines = keep_logs(platform.logs, out, shape)
            shapes.append(result)
    summary, missed = report(shapes, opts)
    print(summary)
    (out / "summary.txt").write_text(summary + "\n")
    (out / "results.json").write_text(
        json.dumps({"options": asdict(opts), "shapes": [asdict(s) for s in shapes]}, indent=1)
    )
    note(f"results in {out.relative_to(ROOT)}")
    return 3 if opts.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
