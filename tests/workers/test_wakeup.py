"""An idle worker starts a submitted job at once, not at its next poll.

The worker polls every 60 s (the longest setting), so a job that completes in these
tests was started by the wake-up; and ``idle_polls`` counts the waits that ended by the
poll instead: none may. On SQLite the API and the worker share the in-process channel
(``mlops up``); on PostgreSQL the worker has its own Redis connection, as a
``mlops worker`` process does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mlops.kv import KeyValueStore, create_kv
from mlops.workers.process import WorkerProcess
from tests.conftest import Platform, bearer
from tests.serving.conftest import release
from tests.workers.helpers import (
    dataset,
    decode,
    encode,
    get_job,
    submit,
    upload_dataset,
    wait_for,
)

POLL = 60.0  # the longest poll the settings allow; the waits below are shorter


@asynccontextmanager
async def listening_worker(platform: Platform) -> AsyncIterator[WorkerProcess]:
    """A running worker, idle and subscribed to wake-ups, polling every 60 s."""
    settings = platform.settings.model_copy(update={"worker_poll_seconds": POLL})
    own_kv: KeyValueStore | None = None
    kv = platform.ctx.kv
    if kv.shared:
        kv = own_kv = create_kv(settings)  # another process's connection to Redis
    worker = WorkerProcess(settings, platform.ctx.store, platform.app.state.job_metrics, kv)
    await worker.start()
    try:
        assert worker.listener is not None
        await wait_for(_is_set(worker.listener.subscribed), timeout=30)
        await wait_for(_is_set(worker.worker.idle), timeout=30)
        yield worker
    finally:
        await worker.stop()
        if own_kv is not None:
            await own_kv.close()


def _is_set(event: Any) -> Any:
    async def check() -> bool:
        return bool(event.is_set())

    return check


async def _finished(platform: Platform, token: str, job_id: int) -> dict[str, Any]:
    job: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal job
        job = await get_job(platform, token, job_id)
        return job["status"] in {"succeeded", "failed", "cancelled"}

    await wait_for(done, timeout=POLL / 2)
    return job


async def test_a_submitted_job_wakes_an_idle_worker(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    ids, x = dataset(20, seed=3)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "csv"), "w.csv"))["uri"]
    async with listening_worker(platform) as worker:
        polls = worker.worker.idle_polls
        for _ in range(2):  # idle again after the first: the second wakes it too
            job = await submit(platform, admin_token, model="churn", input=uri)
            done = await _finished(platform, admin_token, job["id"])
            assert done["status"] == "succeeded" and done["rows_done"] == 20, done
            await wait_for(_is_set(worker.worker.idle), timeout=30)
        assert worker.worker.idle_polls == polls  # no wait ran to the poll interval
        assert worker.worker.tasks_done == 2


async def test_queued_shards_wake_the_other_idle_workers(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    # The plan's worker announces its shards: a second idle worker takes some of them.
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    ids, x = dataset(400, seed=4)
    data = encode(ids, x, "parquet", row_group=10)
    uri = (await upload_dataset(platform, admin_token, data, "w.parquet"))["uri"]
    async with listening_worker(platform) as first, listening_worker(platform) as second:
        job = await submit(
            platform, admin_token, model="churn", input=uri, options={"shard_rows": 10}
        )
        done = await _finished(platform, admin_token, job["id"])
        assert done["status"] == "succeeded" and done["shards_total"] == 40, done
        for worker in (first, second):  # each has recorded its last task
            await wait_for(_is_set(worker.worker.idle), timeout=30)
        # 1 plan + 40 shards + 1 assembly, shared: the worker that did not plan was
        # idle (polling every 60 s) when the shards were queued, and still took some.
        tasks = [first.worker.tasks_done, second.worker.tasks_done]
        assert sum(tasks) == 42 and min(tasks) >= 1, tasks
    output = await platform.client.get(done["download"], headers=bearer(admin_token))
    assert decode(output.content, "parquet").column("id").to_pylist() == ids
