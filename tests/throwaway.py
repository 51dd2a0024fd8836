"""Throwaway PostgreSQL and Redis servers that a test may stop and start.

The shared servers on 5432 and 6379 are never stopped; an outage test runs its own
on a free port and stops only the process it started.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.services import INSTALL_HINT, postgres_bin_dirs, redis_binaries, server_user

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_bin() -> Path:
    # The same builds as the suite's own servers (tests/services.py): pip's, else the system's.
    found = postgres_bin_dirs()
    if not found:
        pytest.fail(f"no PostgreSQL server binaries found: {INSTALL_HINT}")
    return found[0][0]


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.bin = _pg_bin()
        # Not under pytest's tmp dir: the server's user must be able to traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="mlops-pg-", dir="/tmp"))
        self.user = server_user()  # PostgreSQL refuses root: postgres or nobody then
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8")  # fmt: skip

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [str(self.bin / program), *args],
            check=check,
            capture_output=True,
            timeout=120,
            cwd=self.root,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", f"{self.root}/log", "-w",
                  "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


class ThrowawayRedis:
    """A redis-server on a free port that writes every change to its append-only file,
    so a kill and a restart on the same port keep the keys, as a Redis with persistence
    (or one that was only unreachable) does."""

    def __init__(self, directory: Path) -> None:
        found = redis_binaries()  # pip's build, else the system's (tests/services.py)
        if not found:
            pytest.fail(f"no redis-server found: {INSTALL_HINT}")
        self.binary = str(found[0][0])
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log_text = (self.directory / "redis.log").read_text()
                        raise RuntimeError(f"redis-server did not start: {log_text}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """Stop it abruptly (SIGKILL), as a crash or a lost node would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = ThrowawayRedis(directory)
    try:
        server.start()
        yield server
    finally:
        server.kill()
