"""``batch_predict``: score a data set with a registered model version.

Three steps, each a leased task: **plan** reads the input's columns and row count and
splits it into shards; each **shard** scores its rows and writes them, atomically, to
``jobs/<id>/shards/<index>.parquet`` (a retried shard writes the same bytes under the
same name); **assemble** runs once every shard is done and concatenates the shards in
order into the output, written atomically, so the output holds each input row exactly
once, in the input's order, or does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlops.db.base import utcnow
from mlops.modelformats import Runtime, sample_input
from mlops.workers.context import StepContext, StepDone, check_abort
from mlops.workers.errors import InputError
from mlops.workers.jobs.names import BATCH_PREDICT, shard_key
from mlops.workers.locations import Location
from mlops.workers.models import Job, JobTask
from mlops.workers.objects import publish_local, temp_beside
from mlops.workers.queue import DONE, QUEUED, SUCCEEDED, Lease
from mlops.workers.runtimes import VersionFile
from mlops.workers.tables import (
    MISSING_OK_FORMATS,
    Layout,
    Plan,
    ShardRange,
    feature_columns,
    output_batch,
    plan_input,
    read_shard,
)
from mlops.workers.writers import open_writer

TYPE = BATCH_PREDICT
BATCH_ROWS = 65_536


def _new_task(job: Job, kind: str, index: int, shard: ShardRange | None = None) -> JobTask:
    return JobTask(
        job_id=job.id,
        kind=kind,
        index=index,
        status=QUEUED,
        attempts=0,
        available_at=utcnow(),
        row_start=shard.row_start if shard else None,
        row_end=shard.row_end if shard else None,
        byte_start=shard.byte_start if shard else None,
        byte_end=shard.byte_end if shard else None,
    )


async def plan(ctx: StepContext, lease: Lease, abort: threading.Event) -> StepDone:
    job = await ctx.job_of(lease)
    version = await ctx.version_file(job)
    path = await ctx.input_file(job)
    check_abort(abort)
    shard_rows = int(job.options.get("shard_rows", 100_000))
    features = feature_columns(version.signature)
    assert job.format is not None
    probabilities = _probabilities(job, version)  # refused before any work
    runtime = ctx.runtimes.loaded(version)
    if runtime is not None:
        # The model is loaded: plan, and score a job of one shard, in one thread call.
        whole = Whole(ctx, job, version, runtime, probabilities, lease.token)
        result, rows = await asyncio.to_thread(whole.plan_and_score, path, shard_rows, abort)
        if rows is not None:
            return await whole.done(result, rows)
    else:
        result = await asyncio.to_thread(plan_input, path, job.format, features, shard_rows)
        if len(result.shards) == 1:
            runtime = await ctx.runtimes.get(version)
            whole = Whole(ctx, job, version, runtime, probabilities, lease.token)
            rows = await asyncio.to_thread(whole.score, path, result, abort)
            return await whole.done(result, rows)

    def apply(session: Session, job: Job, task: JobTask) -> None:
        job.rows_total = result.rows
        job.shards_total = len(result.shards)
        job.result = {**job.result, "has_id": result.has_id, "id_type": result.id_type}
        for index, shard in enumerate(result.shards):
            session.add(_new_task(job, "shard", index, shard))
        if not result.shards:
            session.add(_new_task(job, "assemble", 0))

    return StepDone(apply)


def _layout(job: Job, version_format: str, signature: Any) -> Layout:
    return Layout(
        fmt=job.format or "csv",
        features=feature_columns(signature),
        has_id=bool(job.result.get("has_id")),
        id_type=job.result.get("id_type"),
        allow_missing=version_format in MISSING_OK_FORMATS,
        input_dtype=signature.input_dtype,
    )


def _score(
    path: Path,
    layout: Layout,
    shard: ShardRange,
    runtime: Runtime,
    probabilities: bool,
    out: Path,
    abort: threading.Event,
    out_format: str = "parquet",
) -> int:
    classes = runtime.signature.classes
    rows = 0
    writer = None
    try:
        for _, ids, x in read_shard(path, layout, shard, BATCH_ROWS):
            check_abort(abort)
            prediction = runtime.predict(x.astype(np.dtype(layout.input_dtype), copy=False))
            batch = output_batch(
                ids, prediction.values, prediction.probabilities if probabilities else None, classes
            )
            if writer is None:
                writer = open_writer(out, out_format, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


class Whole:
    """A job of one shard, scored and written by its plan step: no shard file, no
    assembly (what makes many small jobs cheap). The output is written atomically;
    into a local store directly (a temp file beside it, renamed), else through ``put``."""

    def __init__(
        self,
        ctx: StepContext,
        job: Job,
        version: VersionFile,
        runtime: Runtime,
        probabilities: bool,
        token: str,
    ) -> None:
        assert job.output_uri is not None and job.format is not None
        self._ctx = ctx
        self._job = job
        self._version = version
        self._runtime = runtime
        self._probabilities = probabilities
        self._token = token
        self._output = ctx.location(job.output_uri)
        self._put_later = False

    def plan_and_score(
        self, path: Path, shard_rows: int, abort: threading.Event
    ) -> tuple[Plan, int | None]:
        """(the plan, the rows written, or None when the input needs several shards)."""
        assert self._job.format is not None
        features = feature_columns(self._version.signature)
        result = plan_input(path, self._job.format, features, shard_rows)
        if len(result.shards) != 1:
            return result, None
        return result, self.score(path, result, abort)

    def score(self, path: Path, plan: Plan, abort: threading.Event) -> int:
        """Score and write the output (blocking: runs in a thread)."""
        layout = Layout(
            fmt=self._job.format or "csv",
            features=feature_columns(self._version.signature),
            has_id=plan.has_id,
            id_type=plan.id_type,
            allow_missing=self._version.format in MISSING_OK_FORMATS,
            input_dtype=self._version.signature.input_dtype,
        )
        target = self._ctx.objects.local_target(self._output)
        if target is None:
            self._ctx.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            out = self._work_file(layout.fmt)
        else:
            out = temp_beside(target, self._token)
        try:
            rows = _score(
                path, layout, plan.shards[0], self._runtime, self._probabilities, out, abort,
                layout.fmt,
            )  # fmt: skip
            check_abort(abort)
            if target is not None:
                publish_local(out, target)
        except BaseException:
            with contextlib.suppress(OSError):
                out.unlink()
            raise
        self._put_later = target is None
        return rows

    def _work_file(self, fmt: str) -> Path:
        return self._ctx.work_dir / f"job-{self._job.id}-output-{self._token}.{fmt}"

    async def done(self, plan: Plan, rows: int) -> StepDone:
        """Store the output (when not written in place) and record the job's end."""
        if self._put_later:
            out = self._work_file(self._job.format or "csv")
            try:
                await self._ctx.objects.put(self._output, out)
            finally:
                with contextlib.suppress(OSError):
                    out.unlink()
        self._ctx.forget_inputs(keep=None)

        def apply(session: Session, job: Job, task: JobTask) -> None:
            job.rows_total = job.rows_done = rows
            job.shards_total = job.shards_done = 1
            job.status = SUCCEEDED
            job.result = {**job.result, "has_id": plan.has_id, "output_rows": rows}
            job.files_removed_at = utcnow()  # it wrote none

        return StepDone(apply, rows, shard_files=False)


def _probabilities(job: Job, version: VersionFile) -> bool:
    wanted = bool(job.options.get("return_probabilities"))
    if wanted and not version.signature.has_probabilities:
        raise InputError(f"version {version.version} of {version.model!r} gives no probabilities")
    return wanted


async def shard(ctx: StepContext, lease: Lease, abort: threading.Event) -> StepDone:
    job = await ctx.job_of(lease)
    version = await ctx.version_file(job)
    runtime = await ctx.runtimes.get(version)
    path = await ctx.input_file(job)
    layout = _layout(job, version.format, version.signature)
    assert lease.row_start is not None and lease.row_end is not None
    span = ShardRange(lease.row_start, lease.row_end, lease.byte_start, lease.byte_end)
    probabilities = _probabilities(job, version)
    out = ctx.work_dir / f"job-{job.id}-shard-{lease.index}-{lease.token}.parquet"
    try:
        rows = await asyncio.to_thread(
            _score, path, layout, span, runtime, probabilities, out, abort
        )
        check_abort(abort)
        if rows:
            await ctx.objects.store.put_file(shard_key(job.id, lease.index), out)
    finally:
        with contextlib.suppress(OSError):
            out.unlink()

    def apply(session: Session, job: Job, task: JobTask) -> None:
        job.rows_done += rows
        job.shards_done += 1
        left = session.scalar(
            select(func.count())
            .select_from(JobTask)
            .where(JobTask.job_id == job.id, JobTask.kind == "shard", JobTask.status != DONE)
        )
        if not left:
            session.add(_new_task(job, "assemble", 0))

    return StepDone(apply, rows)


def _empty_schema(runtime: Runtime, layout: Layout, probabilities: bool, id_type: Any) -> pa.Schema:
    sample = runtime.predict(sample_input(runtime.signature, rows=1))
    ids = None
    if layout.has_id:
        ids = pa.array([], type=pa.string() if layout.fmt == "csv" else pa.int64())
    batch = output_batch(
        ids,
        sample.values[:0],
        sample.probabilities[:0] if probabilities and sample.probabilities is not None else None,
        runtime.signature.classes,
    )
    return batch.schema


def _concatenate(shards: list[Path], out: Path, fmt: str, schema: pa.Schema | None) -> int:
    writer = None
    rows = 0
    try:
        for path in shards:
            table = pq.read_table(path)
            if writer is None:
                schema = table.schema
                writer = open_writer(out, fmt, schema)
            writer.write_table(table.cast(schema) if table.schema != schema else table)
            rows += table.num_rows
        if writer is None:
            assert schema is not None
            writer = open_writer(out, fmt, schema)
    finally:
        if writer is not None:
            writer.close()
    return rows


async def assemble(ctx: StepContext, lease: Lease, abort: threading.Event) -> StepDone:
    job = await ctx.job_of(lease)
    assert job.format is not None
    ctx.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    downloads: list[Path] = []
    shards: list[Path] = []
    try:
        for index in range(job.shards_total or 0):
            key = shard_key(job.id, index)
            location = Location("platform", key)
            dest = ctx.work_dir / f"job-{job.id}-part-{index}-{lease.token}.parquet"
            size = await ctx.objects.store.size(key)
            if size is None:
                continue  # a shard of no rows writes nothing
            path = await ctx.objects.fetch(location, dest)
            if path == dest:
                downloads.append(dest)
            shards.append(path)
            check_abort(abort)
        schema = None
        if not shards:
            version = await ctx.version_file(job)
            runtime = await ctx.runtimes.get(version)
            layout = _layout(job, version.format, version.signature)
            schema = _empty_schema(
                runtime, layout, bool(job.options.get("return_probabilities")), None
            )
        out = ctx.work_dir / f"job-{job.id}-output-{lease.token}.{job.format}"
        downloads.append(out)
        rows = await asyncio.to_thread(_concatenate, shards, out, job.format, schema)
        if rows != job.rows_done:
            raise RuntimeError(
                f"the shards hold {rows} rows but {job.rows_done} were scored; assembling again"
            )
        check_abort(abort)
        assert job.output_uri is not None
        await ctx.objects.put(ctx.location(job.output_uri), out)
    finally:
        for path in downloads:
            with contextlib.suppress(OSError):
                path.unlink()
    ctx.forget_inputs(keep=None)

    def apply(session: Session, job: Job, task: JobTask) -> None:
        job.status = SUCCEEDED
        job.result = {**job.result, "output_rows": rows}

    return StepDone(apply)
