"""Waking idle workers when work is queued, instead of letting it wait for their poll.

A submission (or a plan that queued shards) publishes on ``JOBS_QUEUED`` through the
platform's key-value store: Redis pub/sub across processes when Redis is configured,
an in-process channel otherwise (``mlops up``, whose API and worker share a process).
Each worker listens and ends its idle wait at once. A lost message costs nothing but
latency: workers still poll every ``MLOPS_WORKER_POLL_SECONDS``, and the queue in the
database stays the only source of truth (a wake-up carries no job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from mlops.db.session import after_commit
from mlops.kv import KeyValueStore

log = logging.getLogger("mlops.workers")
JOBS_QUEUED = "jobs-queued"


async def announce(kv: KeyValueStore) -> None:
    """Tell idle workers that work is queued. Never fails: they poll anyway."""
    try:
        await kv.publish(JOBS_QUEUED, "1")
    except Exception:
        log.debug("could not announce queued work; workers will see it at their poll")


def announce_after_commit(session: AsyncSession, kv: KeyValueStore) -> None:
    """Announce once the job is committed (a worker woken earlier would not see it)."""
    after_commit(session, lambda: announce(kv))


class WakeListener:
    """Calls ``wake`` for every announcement, until ``stop()``."""

    def __init__(self, kv: KeyValueStore, wake: Callable[[], None]) -> None:
        self._kv = kv
        self._wake = wake
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # for tests: announcements from now on arrive

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="worker-wakeup")

    async def _listen(self) -> None:
        while not self._stopping:
            try:
                messages = self._kv.subscribe(JOBS_QUEUED)
                async with contextlib.aclosing(messages):
                    async for message in messages:
                        self.subscribed.set()
                        if self._stopping:
                            return  # leaves the subscription cleanly, not mid-read
                        if message is not None:
                            self._wake()
            except Exception:
                log.warning("job wake-ups unavailable; polling until they are back")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        # The subscription yields a few times a second: it ends without a cancel.
        self._stopping = True
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=5)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
