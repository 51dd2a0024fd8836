"""Real worker processes: SIGKILLed at random points of a multi-shard job and restarted,
they still write each input row exactly once; SIGTERM gives the shard back and exits 0."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from mlops.workers.models import JobTask
from tests.conftest import Platform, bearer
from tests.serving.conftest import release
from tests.workers.helpers import (
    dataset,
    decode,
    encode,
    get_job,
    running_platform,
    submit,
    upload_dataset,
)
from tests.workers.processes import worker_process, worker_processes

pytestmark = pytest.mark.slow


async def _task_counts(platform: Platform, job_id: int) -> dict[str, int]:
    async with platform.ctx.sessions() as session:
        rows = await session.execute(
            select(JobTask.status, func.count())
            .where(JobTask.job_id == job_id)
            .group_by(JobTask.status)
        )
        return {str(status): int(count) for status, count in rows}


async def _max_attempts(platform: Platform, job_id: int) -> int:
    async with platform.ctx.sessions() as session:
        value = await session.scalar(
            select(func.max(JobTask.attempts)).where(JobTask.job_id == job_id)
        )
        return int(value or 0)


async def _until(check: Any, timeout: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _served(platform: Platform, token: str, x: np.ndarray) -> list[Any]:
    predictions: list[Any] = []
    for start in range(0, len(x), 5000):
        response = await platform.client.post(
            "/api/v1/models/churn/predict",
            json={"data": x[start : start + 5000].tolist()},
            headers=bearer(token),
        )
        assert response.status_code == 200, response.text
        predictions += response.json()["predictions"]
    return predictions


async def test_killed_workers_still_write_each_row_once(
    platform: Platform, admin_token: str, model_files: dict[str, Path], tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    await release(platform, admin_token, "churn", [model_files["xgboost"]])
    ids, x = dataset(60_000, seed=8)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "csv"), "big.csv"))["uri"]
    # 120 shards: the kills below come after at most 12 of them, and the rest takes two
    # workers well over the random wait before a kill (with 24, a fast machine finished
    # the job before the second kill).
    job = await submit(platform, admin_token, model="churn", input=uri, options={"shard_rows": 500})
    settings = platform.settings
    target = 0
    for round_ in range(2):
        logs = [tmp_path / f"w{round_}-{i}.log" for i in range(2)]
        with worker_processes(settings, logs) as workers:
            target += rng.randint(2, 6)

            async def progressed(target: int = target) -> bool:
                done: int = (await get_job(platform, admin_token, job["id"]))["shards_done"]
                return done >= target

            await _until(progressed)
            await asyncio.sleep(rng.uniform(0.0, 0.3))  # a random point of the shard in hand
            for process in workers:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        assert (await get_job(platform, admin_token, job["id"]))["status"] == "running"
    with worker_processes(settings, [tmp_path / f"final-{i}.log" for i in range(2)]):

        async def finished() -> bool:
            return (await get_job(platform, admin_token, job["id"]))["status"] in (
                "succeeded",
                "failed",
            )

        await _until(finished, timeout=180)

        async def swept() -> bool:
            return not await platform.ctx.store.list_keys(f"jobs/{job['id']}/shards/")

        await _until(swept, timeout=60)
    done = await get_job(platform, admin_token, job["id"])
    assert done["status"] == "succeeded", done
    assert done["rows_done"] == done["rows_total"] == 60_000 and done["shards_total"] == 120
    assert await _max_attempts(platform, job["id"]) >= 2  # a killed worker's shard was retaken
    output = decode(
        (await platform.client.get(done["download"], headers=bearer(admin_token))).content, "csv"
    )
    assert output.column("id").to_pylist() == ids  # each row once, in order
    assert output.column("prediction").to_pylist() == await _served(platform, admin_token, x)


async def test_sigterm_gives_the_shard_back_and_exits_zero(
    job_settings: Any, model_files: dict[str, Path], tmp_path: Path
) -> None:
    settings = job_settings(worker_grace_seconds=0, worker_lease_seconds=60)
    async with running_platform(settings) as platform:
        token = await platform.login()
        await release(platform, token, "churn", [model_files["xgboost"]])
        ids, x = dataset(60_000, seed=9)
        uri = (
            await upload_dataset(
                platform, token, encode(ids, x, "parquet", row_group=2000), "d.parquet"
            )
        )["uri"]
        job = await submit(platform, token, model="churn", input=uri, options={"shard_rows": 2000})
        with worker_process(settings, tmp_path / "w.log") as process:

            async def busy() -> bool:
                return (await _task_counts(platform, job["id"])).get("running", 0) > 0

            await _until(busy)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        # Nothing is left leased to the stopped worker (its lease was 60 s): it gave it back.
        counts = await _task_counts(platform, job["id"])
        assert counts.get("running", 0) == 0, counts
        with worker_process(settings, tmp_path / "w2.log"):

            async def finished() -> bool:
                status: str = (await get_job(platform, token, job["id"]))["status"]
                return status == "succeeded"

            await _until(finished, timeout=180)
        done = await get_job(platform, token, job["id"])
        output = decode(
            (await platform.client.get(done["download"], headers=bearer(token))).content,
            "parquet",
        )
        assert output.column("id").to_pylist() == ids
