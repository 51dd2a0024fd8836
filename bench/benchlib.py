"""Helpers shared by the Python benchmark scripts: the platform's processes, ports,
waiting for an HTTP answer, the environment a run starts from, medians; the tools
(installed with apt when missing), wrk and hey runs and their reports, throwaway
PostgreSQL databases and Redis namespaces.

Every process is started in its own session and ended by its process group, so a
server and anything it spawned go away with it; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The venv's own `mlops` script: what a user runs, without `uv run` in front.
MLOPS = str(Path(sys.executable).with_name("mlops"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def platform_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without its MLOPS_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_DATA_DIR=str(data_dir), **settings)
    return env


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def post_json(url: str, body: Mapping[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.load(response)
        return answer


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    seconds_to_ready: float

    def stop(self) -> None:
        stop_group(self.process)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process group (the server drains), then SIGKILL what is left."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def start_server(
    args: list[str],
    env: Mapping[str, str],
    log: Path,
    *,
    port: int,
    ready_path: str = "/ready",
    timeout: float = 180.0,
    poll: float = 0.01,
) -> Server:
    """Start ``args`` (a server on ``port``) and wait for ``ready_path`` to answer 200;
    ``seconds_to_ready`` runs from just before the process is created."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            args, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = start + timeout
    while True:
        if http_status(f"{url}{ready_path}", timeout=1.0) == 200:
            return Server(process, url, log, time.perf_counter() - start)
        if process.poll() is not None or time.perf_counter() > deadline:
            stop_group(process)
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(args)} did not become ready:\n{tail}")
        time.sleep(poll)


@contextlib.contextmanager
def running(args: list[str], env: Mapping[str, str], log: Path, *, port: int) -> Iterator[Server]:
    server = start_server(args, env, log, port=port)
    try:
        yield server
    finally:
        server.stop()


def timed_run(args: list[str], env: Mapping[str, str], timeout: float = 300.0) -> float:
    """Wall seconds of one run of ``args``; it must exit 0."""
    start = time.perf_counter()
    done = subprocess.run(args, env=dict(env), capture_output=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace')[-1000:]}"
        )
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def log(tool: str, message: str) -> None:
    """A progress line on stderr, with the UTC time: stdout is for the results."""
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"[{stamp}] {tool}: {message}", file=sys.stderr, flush=True)


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


# ----------------------------------------------------------------------------- tools

# The Debian package of each command the benchmarks run.
APT_PACKAGES = {"wrk": "wrk", "hey": "hey", "taskset": "util-linux", "git": "git"}


def ensure_tools(*tools: str) -> None:
    """Install the missing ``tools`` with apt (as root), else exit naming the packages."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    packages = sorted({APT_PACKAGES.get(tool, tool) for tool in missing})
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            f"{', '.join(missing)} not found: install them (Debian: apt-get install "
            f"{' '.join(packages)}), or run as root where apt-get exists"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", *packages]
    subprocess.run(apt, check=True, env=env, stdout=subprocess.DEVNULL)


def pinned(core: int, args: list[str]) -> list[str]:
    """``args`` run on one core (taskset execs them: the pid is the program's own)."""
    return ["taskset", "-c", str(core), *args]


def source_env(mode: str, tmp: Path) -> tuple[dict[str, str], str]:
    """The environment that makes servers run the code ``mode`` names, and a description.

    ``tree``: the working tree as it is. ``head``: a ``git archive`` of HEAD's ``src/`` put
    first on ``PYTHONPATH``, for a shared checkout whose files change during a long run.
    """
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if mode == "tree":
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        return {}, f"working tree at {commit}, {len(changed)} changed files under src/"
    if mode != "head":
        raise SystemExit(f"SOURCE must be tree or head, got {mode!r}")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD", "src"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return {"PYTHONPATH": str(tmp / "src")}, f"git archive of HEAD ({commit})"


# ----------------------------------------------------------------------------- processes


def rss_bytes(pid: int) -> int | None:
    """The process's resident set now (VmRSS), or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s children, grandchildren..."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children = [int(child) for child in task.read_text().split()]
                found += children
                todo += children
    return found


# ----------------------------------------------------------------------------- load generators


@dataclass
class LoadResult:
    """What one wrk or hey run saw. ``requests`` includes the failed ones."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_detail: str = ""

    @property
    def error_pct(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0


# wrk's `done` hook: one line of JSON with exact percentiles (wrk's own table has no p95).
_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests": %d, "seconds": %f, "connect": %d, '
    .. '"read": %d, "write": %d, "status": %d, "timeout": %d, "p50": %d, "p95": %d, '
    .. '"p99": %d, "max": %d}\\n', summary.requests, summary.duration / 1e6, e.connect,
    e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


def wrk_script(path: Path, *, method: str = "GET", json_body: str | None = None) -> Path:
    """Write a wrk Lua script for one request shape that reports through ``_WRK_DONE``."""
    lines = [f'wrk.method = "{method}"']
    if json_body is not None:
        # A level-2 long string: the body's own "]]" cannot end it.
        body = f"wrk.body = [==[{json_body}]==]"
        lines += [body, 'wrk.headers["Content-Type"] = "application/json"']
    path.write_text("\n".join(lines) + "\n" + _WRK_DONE)
    return path


def wrk_command(
    url: str, *, script: Path, connections: int, seconds: float, headers: Mapping[str, str],
    timeout_s: float = 10.0,
) -> list[str]:  # fmt: skip
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={timeout_s:g}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    return [*args, "-s", str(script), url]


def parse_wrk(text: str) -> LoadResult:
    line = next((x for x in text.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"no WRK_RESULT line in wrk's output:\n{text[-2000:]}")
    r = json.loads(line.removeprefix("WRK_RESULT "))
    sockets = {k: r[k] for k in ("connect", "read", "write", "timeout") if r[k]}
    detail = ", ".join(f"{k} {v}" for k, v in sockets.items())
    if r["status"]:
        detail = ", ".join(filter(None, [f"non-2xx/3xx {r['status']}", detail]))
    return LoadResult(
        requests=r["requests"] + sum(sockets.values()),
        errors=r["status"] + sum(sockets.values()),
        seconds=r["seconds"],
        p50_ms=r["p50"] / 1000, p95_ms=r["p95"] / 1000, p99_ms=r["p99"] / 1000,
        max_ms=r["max"] / 1000,
        error_detail=detail,
    )  # fmt: skip


def hey_command(
    url: str, *, connections: int, per_connection_rps: float, seconds: float,
    headers: Mapping[str, str], method: str = "GET", json_body: str | None = None,
    timeout_s: int = 20,
) -> list[str]:  # fmt: skip
    """hey with ``connections`` workers, each at most ``per_connection_rps`` requests/s."""
    args = ["hey", "-z", f"{seconds:g}s", "-c", str(connections), "-q", f"{per_connection_rps:g}",
            "-t", str(timeout_s), "-cpus", "1", "-m", method]  # fmt: skip
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if json_body is not None:
        args += ["-T", "application/json", "-d", json_body]
    return [*args, url]


def parse_hey(text: str) -> LoadResult:
    """hey's text report: its latency distribution, status codes and errors."""

    def seconds_after(label: str) -> float:
        match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+) secs", text, re.M)
        return float(match.group(1)) if match else float("nan")

    percent = {int(p): float(s) for p, s in re.findall(r"^\s*(\d+)%+ in ([\d.]+) secs", text, re.M)}
    statuses = {
        int(c): int(n) for c, n in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", text, re.M)
    }
    error_lines = re.findall(
        r"^\s*\[(\d+)\]\t(.*)$", text.partition("Error distribution:")[2], re.M
    )
    failed = sum(int(n) for n, _ in error_lines)
    bad = {code: n for code, n in statuses.items() if code != 200}
    detail = ", ".join([*(f"status {c}: {n}" for c, n in bad.items()),
                        *(f"{msg[:120]}: {n}" for n, msg in error_lines)])  # fmt: skip
    if not statuses and not failed:
        raise RuntimeError(f"no result in hey's output:\n{text[-2000:]}")
    return LoadResult(
        requests=sum(statuses.values()) + failed,
        errors=sum(bad.values()) + failed,
        seconds=seconds_after("Total:"),
        p50_ms=percent.get(50, float("nan")) * 1000,
        p95_ms=percent.get(95, float("nan")) * 1000,
        p99_ms=percent.get(99, float("nan")) * 1000,
        max_ms=seconds_after("Slowest:") * 1000,
        error_detail=detail,
    )


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (as wrk and hey report them); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]


def prometheus_counters(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each sample of counter ``name`` in a /metrics page, keyed by its sorted labels."""
    samples: dict[tuple[tuple[str, str], ...], float] = {}
    for match in re.finditer(rf"^{re.escape(name)}\{{(.*?)\}} (\S+)$", text, re.M):
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1))))
        samples[labels] = float(match.group(2))
    return samples


# ----------------------------------------------------------------------------- shared state


@contextlib.contextmanager
def throwaway_database(admin_url: str, name: str) -> Iterator[str]:
    """Database ``name`` created on the server at ``admin_url`` (``postgresql://user@host:port``)
    for the block, dropped after (connections and all); its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{admin_url}/{name}"
    finally:
        with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


@contextlib.contextmanager
def redis_namespace_removed(url: str, namespace: str) -> Iterator[None]:
    """Delete every key under ``namespace`` (no glob characters in it) when the block ends."""
    import redis

    if any(char in namespace for char in "*?[]\\"):
        raise ValueError(f"namespace {namespace!r} has glob characters")
    try:
        yield
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        finally:
            client.close()
