"""/ready follows a real PostgreSQL going down and coming back.

The test runs its own throwaway cluster (``tests/throwaway.py``), so it can stop
and start it without touching the shared server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from mlops.config import load_settings
from mlops.db.schema import upgrade_database
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, start_platform
from tests.throwaway import ThrowawayPostgres, throwaway_postgres

__all__ = ["throwaway_postgres"]  # the fixture


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
