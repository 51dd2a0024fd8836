"""A real ``mlops up`` in a subprocess, for tests that talk to it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

MLOPS = [sys.executable, "-m", "mlops.cli.main"]


@dataclass(frozen=True)
class LiveServer:
    url: str
    admin_password: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its MLOPS_* settings, on ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_DATA_DIR=str(data_dir), MLOPS_LOG_JSON="false", **extra)
    return env


def spawn(
    command: list[str], port: int, data_dir: Path, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """``mlops COMMAND --port PORT`` on ``data_dir``, its output into ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [*MLOPS, *command, "--port", str(port)],
            env=clean_env(data_dir, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def running_up(
    workdir: Path, timeout: float = 90, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """``mlops up`` on a free port with its data under ``workdir``, as a user starts it
    (development: the first start creates ``admin`` and registers the ``demo`` model)."""
    port = free_port()
    log = workdir / "up.log"
    process = spawn(["up"], port, workdir / "data", log, COLUMNS="200", **(env or {}))
    url = f"http://127.0.0.1:{port}"
    with answering(process, url, log, what="mlops up", timeout=timeout):
        match = re.search(r"created with password (\S+)", log.read_text())
        if match is None:
            raise RuntimeError(f"no admin password in the output: {log.read_text()}")
        yield LiveServer(url, match.group(1), process)


@contextmanager
def answering(
    process: subprocess.Popen[bytes], url: str, log: Path, *, what: str, timeout: float
) -> Iterator[None]:
    """Wait until ``process`` answers ``url``/health (its log in the error when it exits
    or takes longer than ``timeout``); SIGTERM it at the end, then kill it if it hangs."""
    try:
        wait_answering(process, f"{url}/health", log, what=what, timeout=timeout)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_answering(
    process: subprocess.Popen[bytes], url: str, log: Path, *, what: str, timeout: float
) -> None:
    """Return once ``url`` answers 200; raise with the process's log when it exits first
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} in time: {log.read_text()}")
        time.sleep(0.1)
