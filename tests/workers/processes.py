"""Real ``mlops worker`` processes on a test platform's settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from mlops.config import Settings
from tests.cli.live_server import free_port

MLOPS = [sys.executable, "-m", "mlops.cli.main"]


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives a worker process the same settings as ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    values = {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "redis_url": settings.redis_url,
        "redis_namespace": settings.redis_namespace,
        "artifact_store": settings.artifact_store,
        "s3_endpoint_url": settings.s3_endpoint_url,
        "job_s3_buckets": settings.job_s3_buckets,
        "worker_lease_seconds": str(settings.worker_lease_seconds),
        "worker_poll_seconds": str(settings.worker_poll_seconds),
        "worker_grace_seconds": str(settings.worker_grace_seconds),
        "job_retry_backoff_seconds": str(settings.job_retry_backoff_seconds),
        "job_max_attempts": str(settings.job_max_attempts),
    }
    assert settings.secret_key is not None
    env["MLOPS_SECRET_KEY"] = settings.secret_key.get_secret_value()
    for name, value in values.items():
        if value:
            env[f"MLOPS_{name.upper()}"] = value
    env.update(MLOPS_LOG_JSON="false", MLOPS_ACCESS_LOG="false", **extra)
    return env


@contextmanager
def worker_processes(
    settings: Settings, logs: list[Path], **extra: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``mlops worker`` processes started together, one per log file, yielded once every
    one answers /health; those still alive are SIGKILLed at the end."""
    ports = [free_port() for _ in logs]
    processes = []
    for port, log in zip(ports, logs, strict=True):
        with log.open("ab") as out:
            processes.append(
                subprocess.Popen(
                    [*MLOPS, "worker", "--port", str(port)],
                    env=worker_env(settings, **extra),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        deadline = time.monotonic() + 90
        for port, log, process in zip(ports, logs, processes, strict=True):
            while not _healthy(port):
                if process.poll() is not None:
                    raise RuntimeError(
                        f"worker exited with {process.returncode}: {log.read_text()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start: {log.read_text()}")
                time.sleep(0.1)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)


@contextmanager
def worker_process(
    settings: Settings, log: Path, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    with worker_processes(settings, [log], **extra) as processes:
        yield processes[0]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
