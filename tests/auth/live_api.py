"""A real ``mlops api`` process on a test platform's settings, for tests across processes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops.config import Settings
from tests.cli.live_server import answering, free_port
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
    # A loaded CI machine starts it slowly.
    with answering(process, url, log, what="mlops api", timeout=180):
        yield url
