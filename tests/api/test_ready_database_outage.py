"""/ready follows a real PostgreSQL going down and coming back.

The test runs its own throwaway cluster (initdb as the postgres user), so it can
stop and start it without touching the shared server.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.config import load_settings
from mlops.db.schema import upgrade_database
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, start_platform


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return versions[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.bin = _pg_bin()
        # Not under pytest's tmp dir: the postgres user must be able to traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="mlops-pg-", dir="/tmp"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres(
            f"{self.bin}/initdb -D {self.data} -A trust -U postgres --no-sync -E UTF8"
        )

    def _as_postgres(self, command: str) -> None:
        subprocess.run(
            ["su", "postgres", "-c", command], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._as_postgres(
            f"{self.bin}/pg_ctl -D {self.data} -o '{options}' -l {self.root}/log -w start"
        )

    def stop(self) -> None:
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        subprocess.run(
            ["su", "postgres", "-c", f"{self.bin}/pg_ctl -D {self.data} -m immediate -w stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


async def test_ready_is_503_while_postgres_is_down(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    settings = load_settings(
        database_url=throwaway_postgres.url,
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
        admin_password=ADMIN_PASSWORD,
    )
    await asyncio.to_thread(upgrade_database, settings)
    async for platform in start_platform(settings):
        assert (await platform.client.get("/ready")).status_code == 200
        token = await platform.login()

        await asyncio.to_thread(throwaway_postgres.stop)
        down = await platform.client.get("/ready")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "error"
        # Liveness does not depend on the database: Kubernetes must not restart the pod.
        assert (await platform.client.get("/health")).status_code == 200

        await asyncio.to_thread(throwaway_postgres.start)
        back = await platform.client.get("/ready")
        assert back.status_code == 200, back.text
        me = await platform.client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
