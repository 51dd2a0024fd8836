"""HTTP endpoints of jobs and data sets. Editors submit and cancel; any role reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from mlops.api.deps import ContextDep, CurrentPrincipal, EditorPrincipal, SessionDep
from mlops.api.openapi import AUTHENTICATED, JSON_BODY, error_responses
from mlops.api.paging import PageDep
from mlops.audit.service import record_event
from mlops.db.session import after_commit
from mlops.errors import Conflict
from mlops.registry.schemas import NAME_PATTERN
from mlops.storage import ObjectNotFound
from mlops.workers import service
from mlops.workers.datasets import receive_dataset
from mlops.workers.jobs.names import shard_prefix
from mlops.workers.objects import ObjectAccess
from mlops.workers.schemas import DatasetRead, JobCreate, JobList, JobRead, JobStatus
from mlops.workers.wakeup import announce_after_commit

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=error_responses(*AUTHENTICATED))
JobId = Annotated[int, Path(ge=1, le=2**62)]
_MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _objects(ctx: ContextDep) -> ObjectAccess:
    return ObjectAccess(ctx.store, ctx.settings)


@router.post(
    "/jobs",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(*JSON_BODY, 403, 404, 409),
)
async def submit_job(
    body: JobCreate, editor: EditorPrincipal, session: SessionDep, ctx: ContextDep
) -> JobRead:
    """Queue a batch inference job. The version is resolved now (an alias moved later
    does not change it); workers pick the job up."""
    objects = _objects(ctx)
    try:
        job = await service.submit_job(
            session=session,
            settings=ctx.settings,
            objects=objects,
            actor=editor.username,
            body=body,
        )
    finally:
        await objects.close()
    announce_after_commit(session, ctx.kv)
    return service.job_read(job)


@router.get("/jobs", response_model=JobList, responses=error_responses(422))
async def list_jobs(
    _: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    status: JobStatus | None = None,
    model: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> JobList:
    """Jobs, newest first, a page at a time."""
    jobs, total = await service.list_jobs(session=session, status=status, model=model, page=page)
    return JobList(items=[service.job_read(j) for j in jobs], **page.answer(total))


@router.get("/jobs/{job_id}", response_model=JobRead, responses=error_responses(404, 422))
async def get_job(job_id: JobId, _: CurrentPrincipal, session: SessionDep) -> JobRead:
    return service.job_read(await service.require_job(session=session, job_id=job_id))


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobRead, responses=error_responses(403, 404, 409, 422)
)
async def cancel_job(
    job_id: JobId, editor: EditorPrincipal, session: SessionDep, ctx: ContextDep, request: Request
) -> JobRead:
    """Stop a queued or running job: no further shard is started."""
    job = await service.cancel_job(session=session, actor=editor.username, job_id=job_id)
    objects = _objects(ctx)

    async def remove_shards() -> None:
        # A worker still writing one finds its lease gone and removes what it wrote.
        await objects.delete_prefix(shard_prefix(job_id))

    after_commit(session, remove_shards)
    metrics = getattr(request.app.state, "job_metrics", None)
    if metrics is not None:
        metrics.jobs.labels(job.type, "cancelled").inc()
    return service.job_read(job)


@router.get(
    "/jobs/{job_id}/output",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        **error_responses(404, 409, 422),
    },
)
async def download_output(job_id: JobId, _: CurrentPrincipal, ctx: ContextDep) -> StreamingResponse:
    """The output of a succeeded job in platform storage, streamed."""
    async with ctx.sessions() as session:
        job = await service.require_job(session=session, job_id=job_id)
    read = service.job_read(job)
    if read.download is None or job.output_uri is None:
        if job.status != "succeeded":
            raise Conflict(f"job {job_id} is {job.status}; it has no output yet", code="no_output")
        raise Conflict(
            f"job {job_id} wrote its output to {job.output_uri}; read it from there",
            code="output_elsewhere",
        )
    size = await ctx.store.size(job.output_uri)
    if size is None:
        raise ObjectNotFound(job.output_uri)
    filename = f"job-{job_id}-output.{job.format}"
    return StreamingResponse(
        ctx.store.open_stream(job.output_uri),
        media_type=_MEDIA.get(job.format or "", "application/x-ndjson"),
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@router.post(
    "/datasets",
    response_model=DatasetRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            }
        }
    },
    responses=error_responses(400, 403, 413, 422),
)
async def upload_dataset(request: Request, editor: EditorPrincipal, ctx: ContextDep) -> DatasetRead:
    """Upload a job's input (CSV, Parquet or JSONL, by extension) to platform storage;
    the answer's ``uri`` is what a job's ``input`` takes."""
    dataset = await receive_dataset(
        request,
        store=ctx.store,
        tmp_dir=ctx.settings.data_dir / "tmp",
        max_bytes=ctx.settings.max_upload_bytes,
    )
    async with ctx.sessions() as session:
        await record_event(
            session=session,
            actor=editor.username,
            action="dataset.uploaded",
            target=f"dataset:{dataset.uri}",
            after={"size": dataset.size, "sha256": dataset.sha256},
        )
        await session.commit()
    return dataset
