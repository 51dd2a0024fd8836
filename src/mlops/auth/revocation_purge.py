"""Delete logged-out tokens from the database once they would have expired anyway.

A logged-out token fails because its row is in ``revoked_tokens`` (ADR 0002). Once
the token's own expiry, plus the leeway the signature check allows, has passed, that
check refuses it by itself and the row is dead weight; without a purge the table grows
with every logout. The API process runs ``RevocationPurger`` at start and then every
``MLOPS_REVOCATION_PURGE_INTERVAL_SECONDS`` (a scheduler can call ``run_once`` instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.auth.models import RevokedToken
from mlops.auth.tokens import LEEWAY_SECONDS
from mlops.db.session import transaction

log = logging.getLogger("mlops.auth")
# Past the leeway, with a margin for clocks that differ between processes.
KEEP_AFTER_EXPIRY = timedelta(seconds=LEEWAY_SECONDS + 60)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def purge_expired_revocations(*, session: AsyncSession, now: datetime) -> int:
    """Delete the revocations of tokens that expired before ``now`` (with a margin)."""
    result = await session.execute(
        delete(RevokedToken).where(RevokedToken.expires_at < now - KEEP_AFTER_EXPIRY)
    )
    return int(getattr(result, "rowcount", 0) or 0)


class RevocationPurger:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        interval: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._clock = clock
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Purge once; returns how many rows went."""
        async with transaction(self._sessions) as session:
            purged = await purge_expired_revocations(session=session, now=self._clock())
        if purged:
            log.info("purged expired token revocations", extra={"count": purged})
        return purged

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="revocation-purge")

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # the database may be down: try again next time
                log.warning(
                    "could not purge expired token revocations; retrying at the next interval",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def stop(self) -> None:
        # Asked to finish rather than cancelled: a database call cancelled midway can
        # leave its connection waiting forever.
        self._stopping.set()
        if self._task is not None:
            _, pending = await asyncio.wait([self._task], timeout=10)
            for task in pending:
                task.cancel()
