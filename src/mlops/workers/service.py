"""Jobs as the API sees them: submit (resolving the version once), read, list, cancel.

Services flush; the request's transaction commits.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.config import Settings
from mlops.db.base import utcnow
from mlops.db.paging import Page, fetch_object_page
from mlops.errors import Conflict, Invalid, NotFound
from mlops.registry import aliases, versions
from mlops.registry import service as registry
from mlops.workers.jobs.names import default_output
from mlops.workers.locations import format_of, parse_location
from mlops.workers.models import Job, JobTask
from mlops.workers.objects import ObjectAccess
from mlops.workers.queue import CANCELLED, OPEN_JOB_STATES, QUEUED, cancel_open_tasks
from mlops.workers.schemas import JobCreate, JobRead

DEFAULT_ALIAS = "production"


async def submit_job(
    *,
    session: AsyncSession,
    settings: Settings,
    objects: ObjectAccess,
    actor: str,
    body: JobCreate,
) -> Job:
    model = await registry.require_model(session=session, name=body.model)
    alias = None
    if body.version is not None:
        number = body.version
    else:
        alias = body.alias or DEFAULT_ALIAS
        number = (await aliases.require_alias(session=session, model=model, alias=alias))[1]
    row = await versions.require_version(session=session, model=model, version=number)
    if row.status != versions.READY:
        raise Conflict(
            f"version {number} of {model.name!r} is {row.status}; pick a ready version",
            code="version_not_ready",
        )
    buckets = settings.job_s3_bucket_list
    source = parse_location(body.input, allowed_buckets=buckets, role="input")
    fmt = body.format or format_of(body.input)
    if fmt is None:
        raise Invalid(
            f'cannot tell the format of {body.input!r} from its name; give "format": '
            '"csv", "parquet" or "jsonl"',
            code="unknown_format",
        )
    if await objects.size(source) is None:
        raise NotFound(
            f"input {body.input!r} does not exist; upload it with POST /api/v1/datasets",
            code="input_not_found",
        )
    if body.output is not None:
        target = parse_location(body.output, allowed_buckets=buckets, role="output")
        if target.scheme == "platform" and await objects.size(target) is not None:
            raise Conflict(
                f"output {body.output!r} already exists; jobs never overwrite a file",
                code="output_exists",
            )
    job = Job(
        type=body.type,
        status=QUEUED,
        model_id=model.id,
        model_name=model.name,
        version=number,
        alias=alias,
        input_uri=body.input,
        output_uri=body.output,
        format=fmt,
        options=body.options.model_dump(),
        rows_done=0,
        shards_done=0,
        attempts=0,
        result={},
        created_by=actor,
    )
    session.add(job)
    await session.flush()
    if job.output_uri is None:
        job.output_uri = default_output(job.id, fmt)
    session.add(JobTask(job_id=job.id, kind="plan", index=0, status=QUEUED, attempts=0))
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="job.submitted",
        target=f"job:{job.id}",
        after={"model": model.name, "version": number, "input": body.input},
    )
    return job


async def require_job(*, session: AsyncSession, job_id: int) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist", code="job_not_found")
    return job


async def list_jobs(
    *, session: AsyncSession, status: str | None, model: str | None, page: Page
) -> tuple[list[Job], int]:
    query = select(Job)
    if status is not None:
        query = query.where(Job.status == status)
    if model is not None:
        query = query.where(Job.model_name == model)
    return await fetch_object_page(session, query.order_by(Job.id.desc()), page)


async def cancel_job(*, session: AsyncSession, actor: str, job_id: int) -> Job:
    """Cancel a queued or running job: no more of its tasks are claimed; a shard in
    hand is dropped at its next heartbeat."""
    # The write first: on SQLite a transaction that reads before it writes can fail
    # when a worker wrote in between.
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(OPEN_JOB_STATES))
        .values(status=CANCELLED, finished_at=utcnow())
    )
    if result.rowcount:  # type: ignore[attr-defined]
        await cancel_open_tasks(session, job_id)
    job = await require_job(session=session, job_id=job_id)
    await session.refresh(job)
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"job {job_id} is already {job.status}", code="job_finished")
    await record_event(session=session, actor=actor, action="job.cancelled", target=f"job:{job_id}")
    return job


def job_read(job: Job) -> JobRead:
    download = None
    if job.status == "succeeded" and job.output_uri and "://" not in job.output_uri:
        download = f"/api/v1/jobs/{job.id}/output"
    return JobRead(
        id=job.id,
        type=job.type,
        status=job.status,
        model=job.model_name,
        version=job.version,
        alias=job.alias,
        input=job.input_uri,
        output=job.output_uri,
        format=job.format,
        options=job.options,
        rows_done=job.rows_done,
        rows_total=job.rows_total,
        shards_done=job.shards_done,
        shards_total=job.shards_total,
        attempts=job.attempts,
        error=job.error,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        download=download,
    )
