"""Helpers shared by the Python benchmark scripts: the platform's processes, ports,
waiting for an HTTP answer, the environment a run starts from, medians.

Every process is started in its own session and ended by its process group, so a
server and anything it spawned go away with it; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
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


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
