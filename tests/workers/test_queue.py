"""The queue's leases, fencing, retries and limits, with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.db.base import utcnow
from mlops.workers.db import create_worker_engine, worker_sessions
from mlops.workers.models import Job, JobTask
from mlops.workers.queue import JobQueue

LEASE = 10.0


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def sessions(settings_factory: Any) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_worker_engine(settings_factory())
    yield worker_sessions(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


def queue(sessions: async_sessionmaker[AsyncSession], clock: Clock, **kw: Any) -> JobQueue:
    kw.setdefault("max_attempts", 3)
    kw.setdefault("backoff_seconds", 5.0)
    return JobQueue(sessions, worker_id=kw.pop("name", "w"), lease_seconds=LEASE, clock=clock, **kw)


async def add_job(sessions: async_sessionmaker[AsyncSession], clock: Clock, shards: int = 1) -> int:
    async with sessions() as session, session.begin():
        job = Job(
            type="batch_predict",
            status="queued",
            options={},
            result={},
            rows_done=0,
            shards_done=0,
            attempts=0,
            created_by="test",
        )
        session.add(job)
        await session.flush()
        for index in range(shards):
            session.add(
                JobTask(
                    job_id=job.id,
                    kind="shard",
                    index=index,
                    status="queued",
                    attempts=0,
                    available_at=clock(),
                    row_start=index * 10,
                    row_end=index * 10 + 10,
                )
            )
        return job.id


async def job_of(sessions: async_sessionmaker[AsyncSession], job_id: int) -> Job:
    async with sessions() as session:
        return await session.get_one(Job, job_id)


async def test_a_lost_lease_is_claimed_again_and_fences_the_old_worker(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add_job(sessions, clock)
    first, second = queue(sessions, clock, name="a"), queue(sessions, clock, name="b")
    lease, _ = await first.claim()
    assert lease is not None and lease.attempt == 1
    assert (await second.claim())[0] is None  # leased: nobody else takes it
    assert await first.heartbeat(lease)
    clock.advance(LEASE + 1)  # the first worker died
    retaken, _ = await second.claim()
    assert retaken is not None and retaken.task_id == lease.task_id and retaken.attempt == 2
    assert not await first.heartbeat(lease)
    assert await first.complete(lease, rows=10) == (False, None)
    done, _ = await second.complete(retaken, rows=10)
    assert done


async def test_a_task_abandoned_too_often_fails_its_job_naming_the_shard(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    job_id = await add_job(sessions, clock)
    worker = queue(sessions, clock, max_attempts=2)
    for _ in range(2):
        assert (await worker.claim())[0] is not None
        clock.advance(LEASE + 1)
    lease, finished = await worker.claim()
    assert lease is None
    assert [(f.job_id, f.status) for f in finished] == [(job_id, "failed")]
    job = await job_of(sessions, job_id)
    assert job.status == "failed" and job.error is not None
    assert "shard 0 (rows 0-9) was abandoned 2 times" in job.error


async def test_failed_attempts_back_off_then_fail_the_job(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    job_id = await add_job(sessions, clock)
    worker = queue(sessions, clock, max_attempts=2, backoff_seconds=5.0)
    lease, _ = await worker.claim()
    assert lease is not None
    assert await worker.retry_or_fail(lease, "storage down", retryable=True) == (True, None)
    clock.advance(4)
    assert (await worker.claim())[0] is None  # still backing off
    clock.advance(2)
    again, _ = await worker.claim()
    assert again is not None and again.attempt == 2
    retried, finished = await worker.retry_or_fail(again, "storage down", retryable=True)
    assert not retried and finished is not None and finished.status == "failed"
    job = await job_of(sessions, job_id)
    assert job.error == "shard 0 (rows 0-9) failed after 2 attempts: storage down"


async def test_a_bad_input_fails_at_once(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    job_id = await add_job(sessions, clock, shards=2)
    worker = queue(sessions, clock)
    lease, _ = await worker.claim()
    assert lease is not None
    retried, finished = await worker.retry_or_fail(
        lease, "row 3: 'x' is not a number", retryable=False
    )
    assert not retried and finished is not None
    job = await job_of(sessions, job_id)
    assert (
        job.status == "failed"
        and job.error == "shard 0 (rows 0-9) failed: row 3: 'x' is not a number"
    )
    assert (await worker.claim())[0] is None  # the other shard is cancelled with the job


async def test_a_released_task_is_free_at_once_and_the_attempt_does_not_count(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add_job(sessions, clock)
    worker = queue(sessions, clock)
    lease, _ = await worker.claim()
    assert lease is not None
    await worker.release(lease)
    again, _ = await queue(sessions, clock, name="other").claim()
    assert again is not None and again.task_id == lease.task_id and again.attempt == 1


async def test_concurrent_workers_claim_different_tasks(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add_job(sessions, clock, shards=12)
    workers = [queue(sessions, clock, name=f"w{i}") for i in range(6)]
    claimed = []
    for _ in range(2):
        leases = await asyncio.gather(*(w.claim() for w in workers))
        claimed += [lease.task_id for lease, _ in leases if lease is not None]
    assert len(claimed) == 12 and len(set(claimed)) == 12
    depth = await workers[0].depth()
    assert depth == {}
