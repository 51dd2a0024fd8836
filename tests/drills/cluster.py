"""Real ``mlops`` server processes sharing a throwaway PostgreSQL, a throwaway Redis, one
artifact store and one secret key, as replicas in a cluster do.

Every process gets its own data dir and a free port; whatever is still running at the
end of the test is SIGKILLed (no server outlives its test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from mlops.config import Settings, load_settings
from mlops.db.schema import upgrade_database
from tests.cli.live_server import MLOPS, wait_answering
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis, free_port

START_TIMEOUT_S = 240.0  # a first start registers the demo model; slow on a busy machine


@dataclass
class ServerProcess:
    """One ``mlops up|api|model-server`` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost node does."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """Starts server processes on the throwaway backends; ``close`` ends those left."""

    postgres: ThrowawayPostgres
    redis: ThrowawayRedis
    root: Path
    processes: list[ServerProcess] = field(default_factory=list)

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def settings(self, data_dir: Path, **overrides: Any) -> Settings:
        """The servers' settings, for work done in the test process (migrations, checks)."""
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": self.postgres.url,
            "redis_url": self.redis.url,
            "artifact_store": self.artifacts.as_uri(),
            "secret_key": SECRET_KEY,
            "admin_password": ADMIN_PASSWORD,
        }
        values.update(overrides)
        return load_settings(**values)

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
        env.update(
            MLOPS_DATA_DIR=str(data_dir),
            MLOPS_DATABASE_URL=self.postgres.url,
            MLOPS_REDIS_URL=self.redis.url,
            MLOPS_ARTIFACT_STORE=self.artifacts.as_uri(),
            MLOPS_SECRET_KEY=SECRET_KEY,
            MLOPS_ADMIN_PASSWORD=ADMIN_PASSWORD,
            MLOPS_LOG_JSON="false",
            COLUMNS="200",
        )
        env.update(extra)
        return env

    async def migrate(self) -> None:
        """``mlops db upgrade``, for ``mlops api`` and ``mlops model-server``, which refuse
        an old schema (``mlops up`` migrates by itself)."""
        await asyncio.to_thread(upgrade_database, self.settings(self.root / "migrate"))

    async def start(
        self,
        command: str,
        name: str,
        *,
        data_dir: Path | None = None,
        port: int | None = None,
        **env: str,
    ) -> ServerProcess:
        """``mlops <command>`` on a free port, returned once ``/ready`` answers 200."""
        data_dir = data_dir or self.root / name
        port = port or free_port()
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [*MLOPS, command, "--port", str(port)],
                env=self.env(data_dir, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = ServerProcess(name, port, process, log, data_dir)
        self.processes.append(server)
        await asyncio.to_thread(_wait_ready, server)
        return server

    def close(self) -> None:
        for server in self.processes:
            if server.process.poll() is None:
                server.kill()

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows from the servers' database, read directly (the source of truth)."""
        with psycopg.connect(self.postgres.url, connect_timeout=10) as conn:
            return list(conn.execute(sql, params).fetchall())


def _wait_ready(server: ServerProcess) -> None:
    wait_answering(
        server.process, f"{server.url}/ready", server.log, what=server.name, timeout=START_TIMEOUT_S
    )
