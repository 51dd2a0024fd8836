"""A worker inside a server process: ``mlops worker`` alone, or beside the API and the
model server in ``mlops up``. Built and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil

from mlops.config import Settings
from mlops.kv import KeyValueStore
from mlops.storage import ArtifactStore
from mlops.workers.context import StepContext
from mlops.workers.db import create_worker_engine, worker_sessions
from mlops.workers.loop import Worker, new_worker_id
from mlops.workers.metrics import JobMetrics
from mlops.workers.objects import ObjectAccess
from mlops.workers.queue import JobQueue
from mlops.workers.runtimes import RuntimeCache
from mlops.workers.wakeup import WakeListener, announce

log = logging.getLogger("mlops.workers")


class WorkerProcess:
    def __init__(
        self,
        settings: Settings,
        store: ArtifactStore,
        metrics: JobMetrics,
        kv: KeyValueStore | None = None,
    ) -> None:
        """``kv``: the platform's key-value store, whose pub/sub wakes the worker when a
        job is queued (without it the worker finds work at its polls alone)."""
        self.worker_id = new_worker_id()
        self._engine = create_worker_engine(settings)
        sessions = worker_sessions(self._engine)
        self._objects = ObjectAccess(store, settings)
        self._work_dir = settings.data_dir / "worker-tmp" / self.worker_id
        self.context = StepContext(
            settings=settings,
            sessions=sessions,
            objects=self._objects,
            runtimes=RuntimeCache(store, settings.data_dir / "model-cache"),
            work_dir=self._work_dir,
            metrics=metrics,
        )
        self.queue = JobQueue(
            sessions,
            worker_id=self.worker_id,
            lease_seconds=settings.worker_lease_seconds,
            max_attempts=settings.job_max_attempts,
            backoff_seconds=settings.job_retry_backoff_seconds,
        )
        self.worker = Worker(
            queue=self.queue,
            context=self.context,
            metrics=metrics,
            poll_seconds=settings.worker_poll_seconds,
            grace_seconds=settings.worker_grace_seconds,
            drift_interval_seconds=settings.drift_interval_seconds,
            announce=functools.partial(announce, kv) if kv is not None else None,
        )
        self.listener = WakeListener(kv, self.worker.wake) if kv is not None else None
        self._grace = settings.worker_grace_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.listener is not None:
            self.listener.start()
        self._task = asyncio.create_task(self.worker.run(), name="worker")
        log.info("worker started", extra={"worker": self.worker_id})

    async def stop(self) -> None:
        """Claim nothing more; the task in hand finishes within the grace period or is
        given back to the queue."""
        self.worker.stop()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=self._grace + 10)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.listener is not None:
            await self.listener.stop()
        await self._objects.close()
        await self.queue.close()
        await self._engine.dispose()
        shutil.rmtree(self._work_dir, ignore_errors=True)
        log.info("worker stopped", extra={"worker": self.worker_id})
