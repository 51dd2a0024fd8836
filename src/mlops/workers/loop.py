"""The worker loop: claim a task, run it with a heartbeat, record the outcome.

``run_once()`` does one task (or reports there was none); ``run()`` repeats it until
``stop()``. On stop the worker claims nothing more and lets the task in hand finish
within ``grace`` seconds; past that it aborts the task at its next batch and gives it
back to the queue, so another worker takes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable

from mlops.workers import queue as q
from mlops.workers.context import LeaseLost, StepContext, StepDone
from mlops.workers.errors import InputError
from mlops.workers.jobs import batch_predict, drift
from mlops.workers.metrics import JobMetrics
from mlops.workers.queue import Finished, JobQueue, Lease

log = logging.getLogger("mlops.workers")
Step = Callable[[StepContext, Lease, threading.Event], Awaitable[StepDone]]
DEPTH_EVERY_SECONDS = 5.0
SWEEP_EVERY_SECONDS = 60.0
SCHEDULE_EVERY_SECONDS = 10.0


def new_worker_id() -> str:
    return f"{socket.gethostname()[:64]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        *,
        queue: JobQueue,
        context: StepContext,
        metrics: JobMetrics,
        poll_seconds: float,
        grace_seconds: float,
        drift_interval_seconds: float = 3600.0,
        steps: dict[tuple[str, str], Step] | None = None,
    ) -> None:
        self.queue = queue
        self.context = context
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.drift_interval_seconds = drift_interval_seconds
        self.steps: dict[tuple[str, str], Step] = steps or {
            (batch_predict.TYPE, "plan"): batch_predict.plan,
            (batch_predict.TYPE, "shard"): batch_predict.shard,
            (batch_predict.TYPE, "assemble"): batch_predict.assemble,
            (drift.TYPE, drift.TYPE): drift.run,
        }
        self._stopping = asyncio.Event()
        self._depth_at = 0.0
        self._swept_at = 0.0
        self._scheduled_at = 0.0
        self.tasks_done = 0

    async def run_once(self) -> bool:
        """Claim and run one task; False when there was none."""
        lease, finished = await self.queue.claim()
        self._count(finished)
        if lease is None:
            return False
        if lease.attempt > 1:
            self.metrics.retries.labels(lease.job_type).inc()
        await self._execute(lease)
        self.tasks_done += 1
        return True

    async def run(self) -> None:
        """Work until ``stop()``; database outages are logged and waited out."""
        while not self._stopping.is_set():
            worked = False
            try:
                await self.update_depth(force=False)
                if time.monotonic() - self._scheduled_at > SCHEDULE_EVERY_SECONDS:
                    self._scheduled_at = time.monotonic()
                    await self.queue.enqueue_due(
                        drift.TYPE, self.drift_interval_seconds, drift.TYPE
                    )
                if time.monotonic() - self._swept_at > SWEEP_EVERY_SECONDS:
                    self._swept_at = time.monotonic()
                    await self.sweep()
                worked = await self.run_once()
            except Exception:
                log.exception("worker loop error; trying again shortly")
            if not worked and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def sweep(self) -> int:
        """Delete the shard files of ended jobs that still have them; how many jobs."""
        swept = 0
        for job_id in await self.queue.unswept_jobs():
            if await self._remove_files(job_id):
                swept += 1
        return swept

    def stop(self) -> None:
        self._stopping.set()

    async def update_depth(self, *, force: bool = True) -> None:
        """Set ``mlops_queue_depth`` from the database (at most every 5 s unless forced)."""
        now = time.monotonic()
        if not force and now - self._depth_at < DEPTH_EVERY_SECONDS:
            return
        self._depth_at = now
        depth = await self.queue.depth()
        for job_type in {batch_predict.TYPE, "drift", *depth}:
            self.metrics.queue_depth.labels(job_type).set(depth.get(job_type, 0))

    def _count(self, finished: list[Finished] | Finished | None) -> None:
        if finished is None:
            return
        for job in finished if isinstance(finished, list) else [finished]:
            self.metrics.jobs.labels(job.job_type, job.status).inc()
            if job.seconds is not None:
                self.metrics.duration.labels(job.job_type).observe(job.seconds)
            log.info(
                "job finished",
                extra={"job": job.job_id, "type": job.job_type, "status": job.status},
            )

    async def _heartbeat(self, lease: Lease, abort: threading.Event) -> None:
        interval = self.queue.lease_seconds / 3
        while not abort.is_set():
            await asyncio.sleep(interval)
            try:
                alive = await self.queue.heartbeat(lease)
            except Exception:
                log.warning("heartbeat failed; the lease may expire", exc_info=True)
                continue
            if not alive:
                abort.set()

    async def _execute(self, lease: Lease) -> None:
        step = self.steps.get((lease.job_type, lease.kind))
        abort = threading.Event()
        beat = asyncio.create_task(self._heartbeat(lease, abort))
        work = asyncio.create_task(self._run_step(step, lease, abort))
        try:
            stop = asyncio.create_task(self._stopping.wait())
            done, _ = await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                # Stopping: the task may finish within the grace period, else it goes back.
                finished, _ = await asyncio.wait({work}, timeout=self.grace_seconds)
                if not finished:
                    # Give the task back first: the step may sit in a thread that cannot
                    # be interrupted (a model load), and whatever it still writes is
                    # fenced off (its token is gone) or the same bytes under the same name.
                    abort.set()
                    await self.queue.release(lease)
                    log.info("task given back on shutdown", extra={"job": lease.job_id})
                    await asyncio.wait({work}, timeout=5)
                    return
            stop.cancel()
            outcome = work.result()
        finally:
            abort.set()
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await self._record(lease, outcome)

    async def _run_step(
        self, step: Step | None, lease: Lease, abort: threading.Event
    ) -> StepDone | BaseException:
        if step is None:
            return InputError(f"no worker step for {lease.job_type}/{lease.kind}")
        try:
            return await step(self.context, lease, abort)
        except Exception as exc:
            return exc

    async def _record(self, lease: Lease, outcome: StepDone | BaseException) -> None:
        if isinstance(outcome, LeaseLost):
            log.info("lease lost; leaving the task", extra={"job": lease.job_id})
            await self._clean_if_closed(lease.job_id)
            return
        if isinstance(outcome, BaseException):
            retryable = not isinstance(outcome, InputError)
            error = str(outcome) if not retryable else f"{type(outcome).__name__}: {outcome}"
            if retryable:
                log.warning(
                    "task failed", extra={"job": lease.job_id, "task": lease.kind}, exc_info=outcome
                )
            will_retry, finished = await self.queue.retry_or_fail(lease, error, retryable=retryable)
            self._count(finished)
            if finished is not None:
                await self._clean_if_closed(lease.job_id)
            return
        done, finished = await self.queue.complete(
            lease, rows=outcome.rows, on_complete=outcome.apply
        )
        self._count(finished)
        if not done:
            await self._clean_if_closed(lease.job_id)
            return
        if outcome.rows:
            self.metrics.rows.labels(lease.job_type).inc(outcome.rows)
        if (finished is not None or lease.kind == "assemble") and outcome.shard_files:
            await self._clean_if_closed(lease.job_id, force=True)

    async def _clean_if_closed(self, job_id: int, force: bool = False) -> None:
        """Remove a finished, failed or cancelled job's shard outputs."""
        status = await self.queue.job_status(job_id)
        if force or status in q.FINAL_JOB_STATES:
            await self._remove_files(job_id)
            self.context.forget_inputs(keep=None)

    async def _remove_files(self, job_id: int) -> bool:
        try:
            await self.context.objects.delete_prefix(batch_predict.shard_prefix(job_id))
            await self.queue.mark_swept(job_id)
        except Exception:
            log.warning("could not delete a job's shard files", exc_info=True)
            return False
        return True
