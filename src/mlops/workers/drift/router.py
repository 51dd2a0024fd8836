"""Drift endpoints: a version's reference data set, reports, and running them now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from mlops.api.deps import ContextDep, CurrentPrincipal, EditorPrincipal, SessionDep
from mlops.api.openapi import AUTHENTICATED, error_responses
from mlops.api.paging import PageDep
from mlops.errors import BadRequest
from mlops.registry import service as registry
from mlops.registry import versions
from mlops.registry.schemas import NAME_PATTERN
from mlops.workers import service as jobs
from mlops.workers.datasets import receive_dataset
from mlops.workers.drift import service
from mlops.workers.drift.schemas import DriftRead, ReferenceRead, ReferenceSet
from mlops.workers.jobs.names import DRIFT
from mlops.workers.objects import ObjectAccess
from mlops.workers.queue import add_job
from mlops.workers.schemas import JobRead
from mlops.workers.wakeup import announce_after_commit

router = APIRouter(prefix="/api/v1", tags=["drift"], responses=error_responses(*AUTHENTICATED))
ModelName = Annotated[str, Path(pattern=NAME_PATTERN, description="Model name.")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.put(
    "/models/{name}/versions/{version}/reference",
    response_model=ReferenceRead,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": ReferenceSet.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
    responses=error_responses(400, 403, 404, 413, 422),
)
async def set_reference(
    name: ModelName,
    version: VersionNumber,
    request: Request,
    editor: EditorPrincipal,
    ctx: ContextDep,
) -> ReferenceRead:
    """The version's reference data set (its training data, say): JSON ``{"uri"}`` of a
    data set, or a multipart ``file`` stored like an uploaded data set. Drift reports
    compare live traffic with it."""
    content_type = request.headers.get("content-type", "")
    fmt = None
    if content_type.startswith("multipart/form-data"):
        dataset = await receive_dataset(
            request,
            store=ctx.store,
            tmp_dir=ctx.settings.data_dir / "tmp",
            max_bytes=ctx.settings.max_upload_bytes,
        )
        uri = dataset.uri
    elif content_type.startswith("application/json"):
        try:
            body = ReferenceSet.model_validate_json(await request.body())
        except ValueError as exc:
            raise BadRequest(f'expected {{"uri": ...}}: {exc}', code="invalid_reference") from None
        uri, fmt = body.uri, body.format
    else:
        raise BadRequest(
            'send JSON {"uri": "datasets/..."} or a multipart "file"', code="invalid_reference"
        )
    objects = ObjectAccess(ctx.store, ctx.settings)
    try:
        async with ctx.sessions() as session:
            model = await registry.require_model(session=session, name=name)
            row = await versions.require_version(session=session, model=model, version=version)
            read = await service.set_reference(
                session=session,
                objects=objects,
                buckets=ctx.settings.job_s3_bucket_list,
                actor=editor.username,
                model=model,
                version=row,
                uri=uri,
                fmt=fmt,
            )
            await session.commit()
    finally:
        await objects.close()
    return read


@router.get("/models/{name}/drift", response_model=DriftRead, responses=error_responses(404, 422))
async def get_drift(
    name: ModelName,
    _: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> DriftRead:
    """The latest report of each monitored version, and the reports' history."""
    model = await registry.require_model(session=session, name=name)
    monitored, history, total = await service.model_drift(
        session=session, model=model, version=version, page=page
    )
    return DriftRead(model=name, versions=monitored, history=history, **page.answer(total))


@router.post(
    "/models/{name}/drift/run",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(403, 404, 422),
)
async def run_drift(
    name: ModelName, editor: EditorPrincipal, session: SessionDep, ctx: ContextDep
) -> JobRead:
    """Queue a drift report of the model's monitored versions now (a worker runs it)."""
    model = await registry.require_model(session=session, name=name)
    job_id = await add_job(
        session, job_type=DRIFT, actor=editor.username, model=(model.id, model.name)
    )
    announce_after_commit(session, ctx.kv)
    return jobs.job_read(await jobs.require_job(session=session, job_id=job_id))
