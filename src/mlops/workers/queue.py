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

Each operation is one transaction written as a plain function of a synchronous
session. On SQLite it runs whole in a thread on a synchronous connection, so the write
lock is held for the statements alone: through the async driver every statement is a
round trip through the event loop, and a busy loop (the API beside the worker in
``mlops up``) kept the lock for tens of milliseconds while the API's writes slept in
SQLite's busy handler. On PostgreSQL it runs on the async session (``run_sync``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Update, and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

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
OnComplete = Callable[[Session, Job, JobTask], None]
T = TypeVar("T")


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
    # The job's row as the claim read it (detached): its steps need not read it again.
    job: Job | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Finished:
    """A job that reached a final state in this call: for metrics."""

    job_id: int
    job_type: str
    status: str
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Completion:
    """A task completed (``done``; False when its lease was lost) and the next one
    claimed in the same transaction (``following``, None when there is none)."""

    done: bool
    finished: Finished | None
    following: Lease | None
    abandoned: list[Finished]


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
        self._sync_engine: Engine | None = None
        self._sync: sessionmaker[Session] | None = None
        engine = sessions.kw.get("bind")
        if isinstance(engine, AsyncEngine) and engine.dialect.name == "sqlite":
            from mlops.workers.db import create_sync_worker_engine

            self._sync_engine = create_sync_worker_engine(engine.url)
            self._sync = sessionmaker(self._sync_engine, expire_on_commit=False)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    async def close(self) -> None:
        if self._sync_engine is not None:
            await asyncio.to_thread(self._sync_engine.dispose)

    async def _run(self, transaction: Callable[[Session], T]) -> T:
        """``transaction`` in one database transaction (see the module's docstring)."""
        if self._sync is not None:
            return await asyncio.to_thread(self._run_here, self._sync, transaction)
        async with self._sessions() as session, session.begin():
            return await session.run_sync(transaction)

    @staticmethod
    def _run_here(sessions: sessionmaker[Session], transaction: Callable[[Session], T]) -> T:
        with sessions() as session, session.begin():
            return transaction(session)

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)

    async def claim(self) -> tuple[Lease | None, list[Finished]]:
        """The next task to run, leased to this worker, or ``None``; and the jobs that
        failed because a task's lease expired once too often."""
        return await self._run(lambda session: self._claim_in(session, holding_a_job=False))

    def _claim_in(
        self, session: Session, *, holding_a_job: bool
    ) -> tuple[Lease | None, list[Finished]]:
        """Claim inside ``session``'s transaction. ``holding_a_job``: the transaction
        already locked a job row (a completion); then another job's row is only taken
        when free (SKIP LOCKED), so that two workers each completing a task and claiming
        a task of the other's job cannot deadlock: the claim is left to the next call."""
        finished: list[Finished] = []
        while True:
            now = self._clock()
            ready = or_(
                and_(JobTask.status == QUEUED, JobTask.available_at <= now),
                and_(JobTask.status == RUNNING, JobTask.lease_expires_at < now),
            )
            task = session.scalar(
                select(JobTask)
                .where(ready)
                .order_by(JobTask.job_id, JobTask.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if task is None:
                return None, finished
            job = session.scalar(
                select(Job).where(Job.id == task.job_id).with_for_update(skip_locked=holding_a_job)
            )
            if job is None:
                return None, finished  # locked by another worker's transaction
            if task.status == RUNNING and task.attempts >= self.max_attempts:
                # Its worker died (or stalled) on every attempt: stop retrying.
                message = (
                    f"{describe(task)} was abandoned {task.attempts} times (its worker "
                    "stopped answering: killed, out of memory, or node lost)"
                )
                finished.append(_fail_job(session, job, task, message, now))
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
                    job=job,
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

        def beat(session: Session) -> bool:
            result = session.execute(
                update(JobTask)
                .where(*self._mine(lease))
                .values(lease_expires_at=self._expiry(self._clock()))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._run(beat)

    async def complete(
        self, lease: Lease, *, rows: int | None, on_complete: OnComplete | None = None
    ) -> tuple[bool, Finished | None]:
        """Mark the task done and run ``on_complete`` in the same transaction, with the
        job row locked (two last shards finishing at once must not both, or neither,
        queue the assembly). (False, None) when the lease was lost: nothing changed."""
        return await self._run(lambda session: self._complete_in(session, lease, rows, on_complete))

    async def complete_and_claim(
        self, lease: Lease, *, rows: int | None, on_complete: OnComplete | None = None
    ) -> Completion:
        """``complete``, then claim the next task in the same transaction: one commit
        (and on SQLite one turn of the write lock) per task instead of two."""

        def both(session: Session) -> Completion:
            done, finished = self._complete_in(session, lease, rows, on_complete)
            following, abandoned = self._claim_in(session, holding_a_job=done)
            return Completion(done, finished, following, abandoned)

        return await self._run(both)

    def _complete_in(
        self,
        session: Session,
        lease: Lease,
        rows: int | None,
        on_complete: OnComplete | None,
    ) -> tuple[bool, Finished | None]:
        # Locks in the claim's order (the task, then its job), so they cannot deadlock.
        result = session.execute(
            update(JobTask)
            .where(*self._mine(lease))
            .values(status=DONE, rows=rows, lease_expires_at=None, lease_token=None)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False, None
        job = session.get_one(Job, lease.job_id, with_for_update=True)
        task = session.get_one(JobTask, lease.task_id)
        before = job.status
        if on_complete is not None:
            on_complete(session, job, task)
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

        def record(session: Session) -> tuple[bool, Finished | None]:
            now = self._clock()
            task = session.scalar(select(JobTask).where(*self._mine(lease)).with_for_update())
            if task is None:
                return False, None
            job = session.get_one(Job, lease.job_id, with_for_update=True)
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
            return False, _fail_job(session, job, task, message, now)

        return await self._run(record)

    async def release(self, lease: Lease) -> None:
        """Give the task back at once (the worker is stopping); the attempt does not count."""

        def give_back(session: Session) -> None:
            session.execute(
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

        await self._run(give_back)

    async def unswept_jobs(self, limit: int = 20) -> list[int]:
        """Ended jobs whose shard files may remain (their worker died before deleting
        them); ended a lease ago at least, so no late writer is still at work."""

        def read(session: Session) -> list[int]:
            before = self._clock() - timedelta(seconds=self.lease_seconds)
            ids = session.scalars(
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

        return await self._run(read)

    async def mark_swept(self, job_id: int) -> None:
        def mark(session: Session) -> None:
            session.execute(
                update(Job).where(Job.id == job_id).values(files_removed_at=self._clock())
            )

        await self._run(mark)

    async def enqueue_due(self, name: str, interval_seconds: float, job_type: str) -> int | None:
        """Queue a ``job_type`` job when schedule ``name`` is due, and move the schedule on
        (one worker wins: the schedule's row is locked). The id of the job queued, if any;
        none while nothing is monitored."""

        def enqueue(session: Session) -> int | None:
            now = self._clock()
            schedule = session.get(JobSchedule, name, with_for_update=True)
            if schedule is None:
                # The first run is one interval after the first worker starts.
                session.add(
                    JobSchedule(name=name, next_run_at=now + timedelta(seconds=interval_seconds))
                )
                return None
            if schedule.next_run_at > now:
                return None
            schedule.next_run_at = now + timedelta(seconds=interval_seconds)
            if session.scalar(select(func.count()).select_from(DriftReference)) == 0:
                return None
            return new_job(session, job_type=job_type, actor="system", model=None)

        return await self._run(enqueue)

    async def job_status(self, job_id: int) -> str | None:
        def read(session: Session) -> str | None:
            status: str | None = session.scalar(select(Job.status).where(Job.id == job_id))
            return status

        return await self._run(read)

    async def depth(self) -> dict[str, int]:
        """Tasks waiting to run (queued, or whose worker was lost), by job type."""

        def read(session: Session) -> dict[str, int]:
            now = self._clock()
            rows = session.execute(
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

        return await self._run(read)


def new_job(session: Session, *, job_type: str, actor: str, model: tuple[int, str] | None) -> int:
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
    session.flush()
    session.add(JobTask(job_id=job.id, kind=job_type, index=0, status=QUEUED, attempts=0))
    session.flush()
    return job.id


async def add_job(
    session: AsyncSession, *, job_type: str, actor: str, model: tuple[int, str] | None
) -> int:
    """``new_job`` in an API request's session."""
    return await session.run_sync(
        lambda sync: new_job(sync, job_type=job_type, actor=actor, model=model)
    )


def describe(task: JobTask) -> str:
    if task.kind == "shard":
        return f"shard {task.index} (rows {task.row_start}-{(task.row_end or 1) - 1})"
    return f"the {task.kind} step"


def _finished(job: Job) -> Finished:
    seconds = None
    if job.finished_at is not None:
        seconds = (job.finished_at - (job.started_at or job.created_at)).total_seconds()
    return Finished(job.id, job.type, job.status, seconds)


def _fail_job(session: Session, job: Job, task: JobTask, message: str, now: datetime) -> Finished:
    task.status = FAILED
    task.last_error = message[:4000]
    task.lease_token = None
    task.lease_expires_at = None
    session.execute(_cancel_open(job.id))
    job.status = FAILED
    job.error = message[:4000]
    job.finished_at = now
    return _finished(job)


def _cancel_open(job_id: int) -> Update:
    return (
        update(JobTask)
        .where(JobTask.job_id == job_id, JobTask.status.in_(OPEN_TASK_STATES))
        .values(status=CANCELLED, lease_token=None, lease_expires_at=None)
    )


async def cancel_open_tasks(session: AsyncSession, job_id: int) -> None:
    """No task of the job may be claimed again."""
    await session.execute(_cancel_open(job_id))
