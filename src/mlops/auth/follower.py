"""Carry user changes made by another process into this one's in-process caches.

With Redis, a writer publishes a changed user or key into the shared cache after its
commit (ADR 0002). Without Redis every process has its own cache, and a change made
elsewhere, such as ``mlops users disable`` run next to ``mlops up``, reaches only the
database. This follower reads, every ``interval`` seconds, the users whose row changed
lately (``updated_at``) and publishes each new state, with their API keys, into this
process's cache. One small query a second, never one per request.

A change is seen within ``interval`` seconds (plus the query). ``OVERLAP_SECONDS``
re-reads a recent past, so a transaction that committed late, or a writer whose clock
is a little behind, is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.auth.access import AccessGate
from mlops.auth.models import ApiKey, User

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 1.0
OVERLAP_SECONDS = 60.0


class UserChangeFollower:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        gate: AccessGate,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._gate = gate
        self._interval = interval
        self._clock = clock
        # user id -> the updated_at last published; only rows in the overlap are kept.
        self._published: dict[int, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def run_once(self) -> int:
        """Publish every user row that changed since the last look; returns how many."""
        since = datetime.fromtimestamp(self._clock() - OVERLAP_SECONDS, UTC)
        async with self._sessions() as session:
            users = list(await session.scalars(select(User).where(User.updated_at >= since)))
            changed = [u for u in users if self._published.get(u.id) != u.updated_at]
            keys: list[ApiKey] = []
            if changed:
                owners = [u.id for u in changed]
                keys = list(
                    await session.scalars(select(ApiKey).where(ApiKey.owner_id.in_(owners)))
                )
        for user in changed:
            await self._gate.publish_user(user)
        for key in keys:
            # A disabled user's keys were revoked: enabling them again must not revive a
            # key whose cached row still says live.
            await self._gate.publish_key(key)
        self._published = {u.id: u.updated_at for u in users}
        return len(changed)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
                if self._failing:
                    log.info("user changes are followed again")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database outage must not end the loop
                if not self._failing:
                    log.warning("cannot read user changes (will retry): %s", exc)
                self._failing = True
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="user-change-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
