"""A real ``mlops api`` process on a test platform's settings, for tests across processes."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from mlops.config import Settings
from tests.cli.live_server import free_port
from tests.conftest import ADMIN_PASSWORD
from tests.workers.processes import MLOPS, worker_env


@contextmanager
def api_process(settings: Settings, log: Path, **env: str) -> Iterator[str]:
    """``mlops api`` with ``settings`` (``env`` overrides its variables); yields its URL
    once /health answers, and stops it at the end."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*MLOPS, "api", "--port", str(port)],
            env=worker_env(settings, MLOPS_ADMIN_PASSWORD=ADMIN_PASSWORD, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded CI machine starts it slowly
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"mlops api exited with {process.returncode}: {log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlops api did not start: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
