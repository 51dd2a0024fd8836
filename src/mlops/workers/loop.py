"""The worker loop: claim a task, run it with a heartbeat, record the outcome.

``run_once()`` does one task (or reports there was none); ``run()`` repeats it until
``stop()``, recording each outcome and claiming the next task in one transaction. An
idle worker waits ``poll_seconds`` or until ``wake()`` (a job was submitted:
``mlops.workers.wakeup``). On stop the worker claims nothing more and lets the task in
hand finish within ``grace`` seconds; past that it aborts the task at its next batch
and gives it back to the queue, so another worker takes it at once.

The steps (pyarrow, numpy) are imported on the first task, in a thread: a process that
runs a worker beside the API or the model server does not pay for them at start.
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
from mlops.workers.drift.gauges import REFRESH_SECONDS, DriftGauges
from mlops.workers.errors import InputError
from mlops.workers.jobs.names import BATCH_PREDICT, DRIFT, shard_prefix
from mlops.workers.metrics import JobMetrics
from mlops.workers.queue import Finished, JobQueue, Lease

log = logging.getLogger("mlops.workers")
Step = Callable[[StepContext, Lease, threading.Event], Awaitable[StepDone]]
DEPTH_EVERY_SECONDS = 5.0
SWEEP_EVERY_SECONDS = 60.0
SCHEDULE_EVERY_SECONDS = 10.0


def default_steps() -> dict[tuple[str, str], Step]:
    from mlops.workers.jobs import batch_predict, drift

    return {
        (BATCH_PREDICT, "plan"): batch_predict.plan,
        (BATCH_PREDICT, "shard"): batch_predict.shard,
        (BATCH_PREDICT, "assemble"): batch_predict.assemble,
        (DRIFT, DRIFT): drift.run,
    }


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
        announce: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.queue = queue
        self.context = context
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.drift_interval_seconds = drift_interval_seconds
        self.steps = steps
        self.announce = announce  # tells other idle workers that tasks were queued
        self.drift_gauges = DriftGauges(metrics)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._following: Lease | None = None  # claimed with the last task's outcome
        self._depth_at = 0.0
        self._swept_at = 0.0
        self._scheduled_at = 0.0
        self._gauges_at = 0.0
        self.tasks_done = 0
        self.idle = asyncio.Event()  # set while waiting for work
        self.idle_polls = 0  # idle waits that ended by the poll interval, not a wake-up

    async def run_once(self, *, chain: bool = False) -> bool:
        """Claim and run one task; False when there was none. ``chain``: claim the next
        task in the transaction that records this one's outcome (``run()`` does)."""
        if self._following is not None:
            lease: Lease | None = self._following
            finished: list[Finished] = []
            self._following = None
        else:
            lease, finished = await self.queue.claim()
        self._count(finished)
        if lease is None:
            return False
        if lease.attempt > 1:
            self.metrics.retries.labels(lease.job_type).inc()
        await self._execute(lease, chain=chain)
        self.tasks_done += 1
        return True

    def wake(self) -> None:
        """Look for work now (a job was queued), not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Work until ``stop()``; database outages are logged and waited out."""
        try:
            while not self._stopping.is_set():
                worked = False
                # Cleared before looking: a wake-up from now on ends the next wait.
                self._wake.clear()
                try:
                    await self._housekeeping()
                    worked = await self.run_once(chain=True)
                except Exception:
                    log.exception("worker loop error; trying again shortly")
                if not worked and not self._stopping.is_set():
                    await self._idle()
        finally:
            following, self._following = self._following, None
            if following is not None:
                with contextlib.suppress(Exception):
                    await self.queue.release(following)

    async def _idle(self) -> None:
        """Wait for a wake-up, the stop, or the next poll."""
        stop = asyncio.ensure_future(self._stopping.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        self.idle.set()
        try:
            done, _ = await asyncio.wait(
                {stop, wake}, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                self.idle_polls += 1
        finally:
            self.idle.clear()
            stop.cancel()
            wake.cancel()

    async def _housekeeping(self) -> None:
        await self.update_depth(force=False)
        now = time.monotonic()
        if now - self._scheduled_at > SCHEDULE_EVERY_SECONDS:
            self._scheduled_at = now
            await self.queue.enqueue_due(DRIFT, self.drift_interval_seconds, DRIFT)
        if now - self._gauges_at > REFRESH_SECONDS:
            await self.refresh_drift_gauges()
        if now - self._swept_at > SWEEP_EVERY_SECONDS:
            self._swept_at = now
            await self.sweep()

    async def refresh_drift_gauges(self) -> None:
        """The drift gauges from the latest stored reports (the same in every worker)."""
        self._gauges_at = time.monotonic()
        await self.drift_gauges.refresh(self.queue.sessions)

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
        for job_type in {BATCH_PREDICT, DRIFT, *depth}:
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

    async def _execute(self, lease: Lease, *, chain: bool = False) -> None:
        if self.steps is None:
            # In a thread: the import takes a while, and the loop may be serving requests.
            self.steps = await asyncio.to_thread(default_steps)
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
        await self._record(lease, outcome, chain=chain)

    async def _run_step(
        self, step: Step | None, lease: Lease, abort: threading.Event
    ) -> StepDone | BaseException:
        if step is None:
            return InputError(f"no worker step for {lease.job_type}/{lease.kind}")
        try:
            return await step(self.context, lease, abort)
        except Exception as exc:
            return exc

    async def _record(
        self, lease: Lease, outcome: StepDone | BaseException, *, chain: bool = False
    ) -> None:
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
        if chain and not self._stopping.is_set():
            completion = await self.queue.complete_and_claim(
                lease, rows=outcome.rows, on_complete=outcome.apply
            )
            done, finished = completion.done, completion.finished
            self._following = completion.following
            self._count(completion.abandoned)
        else:
            done, finished = await self.queue.complete(
                lease, rows=outcome.rows, on_complete=outcome.apply
            )
        self._count(finished)
        if done and lease.kind == "plan" and finished is None and self.announce is not None:
            await self.announce()  # its shards are queued: idle workers may help
        if done and lease.job_type == DRIFT:
            try:
                await self.refresh_drift_gauges()
            except Exception:
                log.warning("could not refresh the drift gauges", exc_info=True)
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
            await self.context.objects.delete_prefix(shard_prefix(job_id))
            await self.queue.mark_swept(job_id)
        except Exception:
            log.warning("could not delete a job's shard files", exc_info=True)
            return False
        return True
