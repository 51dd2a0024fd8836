"""Helpers of the job tests: data sets, submitting, and running workers in-process."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from mlops.workers.process import WorkerProcess
from tests.conftest import Platform, bearer, start_platform

# ``async with running_platform(settings) as platform``: a platform of its own settings.
running_platform = asynccontextmanager(start_platform)


def dataset(rows: int, seed: int = 0, features: int = 5) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = [f"r{i:06d}" for i in range(rows)]
    return ids, rng.normal(0.0, 2.0, size=(rows, features))


def encode(ids: list[str] | None, x: np.ndarray, fmt: str, row_group: int = 10) -> bytes:
    """The rows as a file; Parquet in row groups of ``row_group`` rows (shards follow them)."""
    columns: dict[str, Any] = {}
    if ids is not None:
        columns["id"] = ids
    for i in range(x.shape[1]):
        columns[f"f{i}"] = x[:, i]
    table = pa.table(columns)
    out = io.BytesIO()
    if fmt == "csv":
        pcsv.write_csv(table, out)
    elif fmt == "parquet":
        pq.write_table(table, out, row_group_size=row_group)
    else:
        out.write(b"".join(orjson.dumps(r) + b"\n" for r in table.to_pylist()))
    return out.getvalue()


def decode(data: bytes, fmt: str) -> pa.Table:
    if fmt == "csv":
        return pcsv.read_csv(
            io.BytesIO(data), convert_options=pcsv.ConvertOptions(column_types={"id": pa.string()})
        )
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data))
    return pa.Table.from_pylist([orjson.loads(line) for line in data.splitlines() if line])


async def upload_dataset(
    platform: Platform, token: str, data: bytes, filename: str
) -> dict[str, Any]:
    response = await platform.client.post(
        "/api/v1/datasets",
        files={"file": (filename, data, "application/octet-stream")},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def submit(platform: Platform, token: str, **body: Any) -> dict[str, Any]:
    response = await platform.client.post("/api/v1/jobs", json=body, headers=bearer(token))
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def get_job(platform: Platform, token: str, job_id: int) -> dict[str, Any]:
    response = await platform.client.get(f"/api/v1/jobs/{job_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


@asynccontextmanager
async def worker_of(platform: Platform) -> AsyncIterator[WorkerProcess]:
    """A worker on the platform's settings and store, driven by the test."""
    worker = WorkerProcess(platform.settings, platform.ctx.store, platform.app.state.job_metrics)
    try:
        yield worker
    finally:
        await worker.stop()


async def drain(platform: Platform, *, limit: int = 500) -> int:
    """Run tasks in this process until none is ready; how many ran."""
    async with worker_of(platform) as worker:
        ran = 0
        while ran < limit and await worker.worker.run_once():
            ran += 1
        await worker.worker.update_depth()
        return ran


async def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.1) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
