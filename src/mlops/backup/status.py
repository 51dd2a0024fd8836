"""When the last backup succeeded: recorded in the database by ``mlops backup create``,
exported by the API as ``mlops_backup_last_success_timestamp_seconds``.

The database is where a short-lived CronJob pod can leave a mark that outlives it
(Prometheus cannot scrape a pod that has exited, and the platform runs no
Pushgateway). Every API replica exports the same value; alerts take ``max``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.config import Settings
from mlops.db.session import create_engine
from mlops.registry.models import PlatformSetting

LAST_SUCCESS_KEY = "backup.last_success"
RECORDED_BY = "mlops backup"
log = logging.getLogger(__name__)


async def record_success(settings: Settings, at: datetime) -> None:
    engine = create_engine(settings)
    try:
        async with AsyncSession(engine) as session:
            await session.merge(
                PlatformSetting(
                    key=LAST_SUCCESS_KEY,
                    value=f"{at.timestamp():.3f}",
                    updated_by=RECORDED_BY,
                    updated_at=at,
                )
            )
            await session.commit()
    finally:
        await engine.dispose()


async def last_success(sessions: async_sessionmaker[AsyncSession]) -> float | None:
    async with sessions() as session:
        row = await session.get(PlatformSetting, LAST_SUCCESS_KEY)
        return None if row is None else float(row.value)


class BackupStatus:
    """Keeps the gauge current by reading the database every ``interval`` seconds
    (a scrape must not wait on the database; the backup runs once a day)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: CollectorRegistry,
        *,
        interval: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.gauge = Gauge(
            "mlops_backup_last_success_timestamp_seconds",
            "Unix time of the last successful `mlops backup create` (0: never).",
            registry=registry,
        )

    async def refresh(self) -> None:
        try:
            value = await last_success(self._sessions)
        except Exception:  # the database being down is reported by /ready, not here
            log.debug("cannot read the last backup time", exc_info=True)
            return
        if value is not None:
            self.gauge.set(value)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def start(self) -> None:
        """Read once now (the first scrape sees the value), then every ``interval``."""
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="backup-status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def utcnow() -> datetime:
    return datetime.now(UTC)
