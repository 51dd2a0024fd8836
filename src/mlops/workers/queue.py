"""The durable queue: a job's tasks, claimed with leases, in the platform database.

A task is ``queued`` (claimable from ``available_at``), ``running`` (leased until
``lease_expires_at``), ``done``, ``failed`` or ``cancelled``. ``claim`` takes the
first ready task, or a running one whose lease expired (its worker died), and gives
it a fresh random token. Heartbeats, completion, retries and releases all match on
that token, so a worker that lost its lease cannot change the task any more; its
late output is harmless because each shard's output has a fixed name and the same
content whoever computes it.

On PostgreSQL the claim reads with ``FOR UPDATE SKIP LOCKED`` (concurrent workers take
different tasks without waiting); on SQLite the workers' ``BEGIN IMMEDIATE``
serialises claims (see ``mlops.workers.db``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.db.base import utcnow
from mlops.workers.models import DriftReference, Job, JobSchedule, JobTask

# Task states
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
# Job states (queued and running as for tasks)
SUCCEEDED = "succeeded"
FINAL_JOB_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
OPEN_JOB_STATES = (QUEUED, RUNNING)
OPEN_TASK_STATES = (QUEUED, RUNNING)
MAX_BACKOFF_SECONDS = 300.0

Clock = Callable[[], datetime]
# Runs inside the completing transaction, with the job row locked.
OnComplete = Callable[[AsyncSession, Job, JobTask], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed task: what to do, and the token that proves the claim."""

    task_id: int
    job_id: int
    job_type: str
    kind: str
    index: int
    token: str
    attempt: int
    row_start: int | None
    row_end: int | None
    byte_start: int | None
    byte_end: int | None


@dataclass(frozen=True, slots=True)
class Finished:
    """A job that reached a final state in this call: for metrics."""

    job_id: int
    job_type: str
    status: str
    seconds: float | None


class JobQueue:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        worker_id: str,
        lease_seconds: float,
        max_attempts: int,
        backoff_seconds: float,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._clock = clock

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)

    async def claim(self) -> tuple[Lease | None, list[Finished]]:
        """The next task to run, leased to this worker, or ``None``; and the jobs that
        failed because a task's lease expired once too often."""
        finished: list[Finished] = []
        while True:
            async with self._sessions() as session, session.begin():
                now = self._clock()
                ready = or_(
                    and_(JobTask.status == QUEUED, JobTask.available_at <= now),
                    and_(JobTask.status == RUNNING, JobTask.lease_expires_at < now),
                )
                task = await session.scalar(
                    select(JobTask)
                    .where(ready)
                    .order_by(JobTask.job_id, JobTask.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if task is None:
                    return None, finished
                job = await session.get_one(Job, task.job_id, with_for_update=True)
                if task.status == RUNNING and task.attempts >= self.max_attempts:
                    # Its worker died (or stalled) on every attempt: stop retrying.
                    message = (
                        f"{describe(task)} was abandoned {task.attempts} times (its worker "
                        "stopped answering: killed, out of memory, or node lost)"
                    )
                    finished.append(await _fail_job(session, job, task, message, now))
                    continue
                task.status = RUNNING
                task.attempts += 1
                task.lease_owner = self.worker_id
                task.lease_token = uuid.uuid4().hex
                task.lease_expires_at = self._expiry(now)
                job.attempts += 1
                if job.status == QUEUED:
                    job.status = RUNNING
                    job.started_at = now
                return (
                    Lease(
                        task_id=task.id,
                        job_id=job.id,
                        job_type=job.type,
                        kind=task.kind,
                        index=task.index,
                        token=task.lease_token,
                        attempt=task.attempts,
                        row_start=task.row_start,
                        row_end=task.row_end,
                        byte_start=task.byte_start,
                        byte_end=task.byte_end,
                    ),
                    finished,
                )

    def _mine(self, lease: Lease) -> list[ColumnElement[bool]]:
        return [
            JobTask.id == lease.task_id,
            JobTask.lease_token == lease.token,
            JobTask.status == RUNNING,
        ]

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend the lease; False when it is lost (expired and taken, or cancelled)."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(JobTask)
                .where(*self._mine(lease))
                .values(lease_expires_at=self._expiry(self._clock()))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def complete(
        self, lease: Lease, *, rows: int | None, on_complete: OnComplete | None = None
    ) -> tuple[bool, Finished | None]:
        """Mark the task done and run ``on_complete`` in the same transaction, with the
        job row locked (two last shards finishing at once must not both, or neither,
        queue the assembly). (False, None) when the lease was lost: nothing changed."""
        # Locks in the claim's order (the task, then its job), so they cannot deadlock.
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(JobTask)
                .where(*self._mine(lease))
                .values(status=DONE, rows=rows, lease_expires_at=None, lease_token=None)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False, None
            job = await session.get_one(Job, lease.job_id, with_for_update=True)
            task = await session.get_one(JobTask, lease.task_id)
            before = job.status
            if on_complete is not None:
                await on_complete(session, job, task)
            if job.status in FINAL_JOB_STATES and before not in FINAL_JOB_STATES:
                job.finished_at = self._clock()
                return True, _finished(job)
            return True, None

    async def retry_or_fail(
        self, lease: Lease, error: str, *, retryable: bool
    ) -> tuple[bool, Finished | None]:
        """After a failed attempt: queue the task again after a backoff, or (not
        retryable, or out of attempts) fail the job naming the task and the error.
        Returns (whether it will be retried, the job if it failed now)."""
        async with self._sessions() as session, session.begin():
            now = self._clock()
            task = await session.scalar(select(JobTask).where(*self._mine(lease)).with_for_update())
            if task is None:
                return False, None
            job = await session.get_one(Job, lease.job_id, with_for_update=True)
            if retryable and task.attempts < self.max_attempts:
                delay = min(self.backoff_seconds * 2 ** (task.attempts - 1), MAX_BACKOFF_SECONDS)
                task.status = QUEUED
                task.available_at = now + timedelta(seconds=delay)
                task.lease_token = None
                task.lease_expires_at = None
                task.last_error = error[:4000]
                return True, None
            attempts = f" after {task.attempts} attempts" if retryable else ""
            message = f"{describe(task)} failed{attempts}: {error}"
            return False, await _fail_job(session, job, task, message, now)

    async def release(self, lease: Lease) -> None:
        """Give the task back at once (the worker is stopping); the attempt does not count."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(JobTask)
                .where(*self._mine(lease))
                .values(
                    status=QUEUED,
                    attempts=JobTask.attempts - 1,
                    available_at=self._clock(),
                    lease_token=None,
                    lease_expires_at=None,
                )
            )

    async def unswept_jobs(self, limit: int = 20) -> list[int]:
        """Ended jobs whose shard files may remain (their worker died before deleting
        them); ended a lease ago at least, so no late writer is still at work."""
        async with self._sessions() as session:
            before = self._clock() - timedelta(seconds=self.lease_seconds)
            ids = await session.scalars(
                select(Job.id)
                .where(
                    Job.status.in_(FINAL_JOB_STATES),
                    Job.files_removed_at.is_(None),
                    Job.finished_at < before,
                )
                .order_by(Job.id)
                .limit(limit)
            )
            return list(ids)

    async def mark_swept(self, job_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Job).where(Job.id == job_id).values(files_removed_at=self._clock())
            )

    async def enqueue_due(self, name: str, interval_seconds: float, job_type: str) -> int | None:
        """Queue a ``job_type`` job when schedule ``name`` is due, and move the schedule on
        (one worker wins: the schedule's row is locked). The id of the job queued, if any;
        none while nothing is monitored."""
        async with self._sessions() as session, session.begin():
            now = self._clock()
            schedule = await session.get(JobSchedule, name, with_for_update=True)
            if schedule is None:
                # The first run is one interval after the first worker starts.
                session.add(
                    JobSchedule(name=name, next_run_at=now + timedelta(seconds=interval_seconds))
                )
                return None
            if schedule.next_run_at > now:
                return None
            schedule.next_run_at = now + timedelta(seconds=interval_seconds)
            if await session.scalar(select(func.count()).select_from(DriftReference)) == 0:
                return None
            return await add_job(session, job_type=job_type, actor="system", model=None)

    async def job_status(self, job_id: int) -> str | None:
        async with self._sessions() as session:
            status: str | None = await session.scalar(select(Job.status).where(Job.id == job_id))
            return status

    async def depth(self) -> dict[str, int]:
        """Tasks waiting to run (queued, or whose worker was lost), by job type."""
        async with self._sessions() as session:
            now = self._clock()
            rows = await session.execute(
                select(Job.type, func.count())
                .select_from(JobTask)
                .join(Job, Job.id == JobTask.job_id)
                .where(
                    or_(
                        JobTask.status == QUEUED,
                        and_(JobTask.status == RUNNING, JobTask.lease_expires_at < now),
                    )
                )
                .group_by(Job.type)
            )
            return {str(kind): int(count) for kind, count in rows}


async def add_job(
    session: AsyncSession, *, job_type: str, actor: str, model: tuple[int, str] | None
) -> int:
    """A job of one task (``job_type`` names the task too), queued now."""
    job = Job(
        type=job_type,
        status=QUEUED,
        model_id=model[0] if model else None,
        model_name=model[1] if model else None,
        options={},
        result={},
        rows_done=0,
        shards_done=0,
        attempts=0,
        created_by=actor,
    )
    session.add(job)
    await session.flush()
    session.add(JobTask(job_id=job.id, kind=job_type, index=0, status=QUEUED, attempts=0))
    await session.flush()
    return job.id


def describe(task: JobTask) -> str:
    if task.kind == "shard":
        return f"shard {task.index} (rows {task.row_start}-{(task.row_end or 1) - 1})"
    return f"the {task.kind} step"


def _finished(job: Job) -> Finished:
    seconds = None
    if job.finished_at is not None:
        seconds = (job.finished_at - (job.started_at or job.created_at)).total_seconds()
    return Finished(job.id, job.type, job.status, seconds)


async def _fail_job(
    session: AsyncSession, job: Job, task: JobTask, message: str, now: datetime
) -> Finished:
    task.status = FAILED
    task.last_error = message[:4000]
    task.lease_token = None
    task.lease_expires_at = None
    await cancel_open_tasks(session, job.id)
    job.status = FAILED
    job.error = message[:4000]
    job.finished_at = now
    return _finished(job)


async def cancel_open_tasks(session: AsyncSession, job_id: int) -> None:
    """No task of the job may be claimed again."""
    await session.execute(
        update(JobTask)
        .where(JobTask.job_id == job_id, JobTask.status.in_(OPEN_TASK_STATES))
        .values(status=CANCELLED, lease_token=None, lease_expires_at=None)
    )
