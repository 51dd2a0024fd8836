"""HTTP endpoints of the registry: models, versions, artifacts, aliases, default model."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from mlops.api.deps import (
    AdminPrincipal,
    ContextDep,
    CurrentPrincipal,
    EditorPrincipal,
    SessionDep,
)
from mlops.api.openapi import AUTHENTICATED, JSON_BODY, error_responses
from mlops.api.paging import PageDep
from mlops.auth.roles import Role
from mlops.db.paging import Page
from mlops.errors import BadRequest, Forbidden, Invalid
from mlops.registry import aliases as alias_service
from mlops.registry import defaults, service, versions
from mlops.registry.sandbox import UploadSandbox
from mlops.registry.schemas import (
    NAME_PATTERN,
    AliasEventRead,
    AliasHistory,
    AliasSet,
    DefaultModelRead,
    DefaultModelSet,
    ModelCreate,
    ModelList,
    ModelRead,
    ModelUpdate,
    VersionList,
    VersionMetadata,
    VersionRead,
    VersionUpdate,
)
from mlops.registry.uploads import receive_upload
from mlops.storage import ObjectNotFound
from mlops.workers.drift.uploads import UploadReference

router = APIRouter(prefix="/api/v1", tags=["registry"], responses=error_responses(*AUTHENTICATED))

ModelName = Annotated[str, Path(pattern=NAME_PATTERN, description="Model name.")]
AliasName = Annotated[str, Path(pattern=NAME_PATTERN, description="Alias name.")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


class AliasMoved(BaseModel):
    model: str
    alias: str
    version: int
    previous_version: int | None


@router.post(
    "/models",
    response_model=ModelRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*JSON_BODY, 403, 409),
)
async def create_model(
    body: ModelCreate, editor: EditorPrincipal, session: SessionDep
) -> ModelRead:
    model = await service.create_model(
        session=session,
        actor=editor.username,
        name=body.name,
        description=body.description,
        tags=body.tags,
    )
    return await service.model_read(session=session, model=model)


@router.get("/models", response_model=ModelList, responses=error_responses(422))
async def list_models(
    _: CurrentPrincipal,
    session: SessionDep,
    prefix: Annotated[str | None, Query(max_length=63, description="Name prefix.")] = None,
    tag: Annotated[str | None, Query(max_length=330, description="'key' or 'key:value'.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    include_archived: bool = False,
) -> ModelList:
    page = Page(limit, offset)
    models, total = await service.list_models(
        session=session,
        prefix=prefix,
        tag=tag,
        page=page,
        include_archived=include_archived,
    )
    items = [await service.model_read(session=session, model=m) for m in models]
    return ModelList(items=items, **page.answer(total))


@router.get("/models/{name}", response_model=ModelRead, responses=error_responses(404, 422))
async def get_model(name: ModelName, _: CurrentPrincipal, session: SessionDep) -> ModelRead:
    """A model with its aliases and the version each points at."""
    model = await service.require_model(session=session, name=name)
    return await service.model_read(session=session, model=model)


@router.patch(
    "/models/{name}", response_model=ModelRead, responses=error_responses(*JSON_BODY, 403, 404)
)
async def update_model(
    name: ModelName, body: ModelUpdate, editor: EditorPrincipal, session: SessionDep
) -> ModelRead:
    model = await service.update_model(
        session=session,
        actor=editor.username,
        name=name,
        description=body.description,
        tags=body.tags,
    )
    return await service.model_read(session=session, model=model)


@router.delete(
    "/models/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(403, 404, 409, 422),
)
async def archive_model(
    name: ModelName,
    editor: EditorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
    force: Annotated[bool, Query(description="Admins: archive even while aliased.")] = False,
) -> Response:
    """Archive a model (it is kept, not erased). Refused while an alias points at it.
    Model servers stop serving it within seconds (404)."""
    if force and editor.role is not Role.admin:
        raise Forbidden("only admins may force-archive a model that is still aliased")
    await service.archive_model(
        session=session, kv=ctx.kv, actor=editor.username, name=name, force=force
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _parse_metadata(raw: str | None) -> VersionMetadata:
    if raw is None or not raw.strip():
        return VersionMetadata()
    try:
        return VersionMetadata.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"'metadata' is not valid JSON: {exc}", code="invalid_metadata") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise Invalid(f"invalid metadata: {problems}", code="invalid_metadata") from None


@router.post(
    "/models/{name}/versions",
    response_model=VersionRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "metadata": {"type": "string", "description": "JSON object"},
                        },
                    }
                }
            }
        }
    },
    responses=error_responses(400, 403, 404, 409, 413, 422),
)
async def upload_version(
    name: ModelName, request: Request, editor: EditorPrincipal, ctx: ContextDep
) -> VersionRead:
    """Upload a model file (ONNX, skops, XGBoost JSON/UBJ, LightGBM text) as a new version.

    The file is validated (loaded, and run on a sample input built from its signature)
    before it is stored; pickle, joblib and other formats that run code are refused.
    """
    async with ctx.sessions() as session:
        await service.require_model(session=session, name=name)
    upload, raw_metadata, reference_file = await receive_upload(
        request, ctx.settings.data_dir / "tmp", max_bytes=ctx.settings.max_upload_bytes
    )
    try:
        metadata = _parse_metadata(raw_metadata)
        # Checked (and a file stored) before the version exists; attached once it does.
        async with UploadReference(ctx, reference_file, metadata.reference_uri) as reference:
            model, row = await versions.register_version(
                sessions=ctx.sessions,
                store=ctx.store,
                kv=ctx.kv,
                model_name=name,
                upload=upload,
                metadata=metadata,
                actor=editor.username,
                sandbox=UploadSandbox.of(ctx.settings),
            )
            await reference.attach(model=model, version=row, actor=editor.username)
    finally:
        upload.discard()
        if reference_file is not None:
            reference_file.discard()
    async with ctx.sessions() as session:
        return await versions.version_read(session=session, model=model, row=row)


@router.get(
    "/models/{name}/versions", response_model=VersionList, responses=error_responses(404, 422)
)
async def list_versions(
    name: ModelName,
    _: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    include_archived: bool = False,
) -> VersionList:
    """The model's versions, oldest first, a page at a time (``limit``, ``offset``)."""
    model = await service.require_model(session=session, name=name)
    rows, total = await versions.list_versions(
        session=session, model=model, include_archived=include_archived, page=page
    )
    return VersionList(
        items=[await versions.version_read(session=session, model=model, row=r) for r in rows],
        **page.answer(total),
    )


@router.get(
    "/models/{name}/versions/{version}",
    response_model=VersionRead,
    responses=error_responses(404, 422),
)
async def get_version(
    name: ModelName, version: VersionNumber, _: CurrentPrincipal, session: SessionDep
) -> VersionRead:
    model = await service.require_model(session=session, name=name)
    row = await versions.require_version(session=session, model=model, version=version)
    return await versions.version_read(session=session, model=model, row=row)


@router.patch(
    "/models/{name}/versions/{version}",
    response_model=VersionRead,
    responses=error_responses(*JSON_BODY, 403, 404),
)
async def update_version(
    name: ModelName,
    version: VersionNumber,
    body: VersionUpdate,
    editor: EditorPrincipal,
    session: SessionDep,
) -> VersionRead:
    """Versions are immutable but for their description and tags."""
    model = await service.require_model(session=session, name=name)
    row = await versions.update_version(
        session=session,
        actor=editor.username,
        model=model,
        version=version,
        description=body.description,
        tags=body.tags,
    )
    return await versions.version_read(session=session, model=model, row=row)


@router.delete(
    "/models/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(403, 404, 409, 422),
)
async def archive_version(
    name: ModelName,
    version: VersionNumber,
    editor: EditorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> Response:
    """Archive a version (refused while an alias points at it)."""
    model = await service.require_model(session=session, name=name)
    await versions.archive_version(
        session=session, kv=ctx.kv, actor=editor.username, model=model, version=version
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/models/{name}/versions/{version}/artifact",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(404, 422)},
)
async def download_artifact(
    name: ModelName, version: VersionNumber, _: CurrentPrincipal, ctx: ContextDep
) -> StreamingResponse:
    """The version's model file, streamed, with its sha256 in ``X-Artifact-SHA256``."""
    async with ctx.sessions() as session:
        model = await service.require_model(session=session, name=name)
        row = await versions.require_version(session=session, model=model, version=version)
    size = await ctx.store.size(row.storage_key)
    if size is None:
        raise ObjectNotFound(row.storage_key)
    return StreamingResponse(
        ctx.store.open_stream(row.storage_key),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{name}-v{version}-{row.filename}"',
            "X-Artifact-SHA256": row.sha256,
            "ETag": f'"{row.sha256}"',
        },
    )


@router.put(
    "/models/{name}/aliases/{alias}",
    response_model=AliasMoved,
    responses=error_responses(*JSON_BODY, 403, 404, 409),
)
async def set_alias(
    name: ModelName,
    alias: AliasName,
    body: AliasSet,
    editor: EditorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> AliasMoved:
    """Point an alias at a version: how a version is released (or rolled back)."""
    model = await service.require_model(session=session, name=name)
    previous = await alias_service.set_alias(
        session=session,
        kv=ctx.kv,
        actor=editor.username,
        model=model,
        alias=alias,
        version=body.version,
    )
    return AliasMoved(model=name, alias=alias, version=body.version, previous_version=previous)


@router.delete(
    "/models/{name}/aliases/{alias}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(403, 404, 422),
)
async def delete_alias(
    name: ModelName,
    alias: AliasName,
    editor: EditorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> Response:
    model = await service.require_model(session=session, name=name)
    await alias_service.delete_alias(
        session=session, kv=ctx.kv, actor=editor.username, model=model, alias=alias
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/models/{name}/aliases/{alias}/history",
    response_model=AliasHistory,
    responses=error_responses(404, 422),
)
async def alias_history(
    name: ModelName, alias: AliasName, _: CurrentPrincipal, session: SessionDep, page: PageDep
) -> AliasHistory:
    """The alias's moves, oldest first, a page at a time: who, when, from which version
    to which."""
    model = await service.require_model(session=session, name=name)
    events, total = await alias_service.alias_events_page(
        session=session, model=model, alias=alias, page=page
    )
    current = await alias_service.find_alias(session=session, model=model, alias=alias)
    return AliasHistory(
        model=name,
        alias=alias,
        current_version=current[1] if current else None,
        events=[
            AliasEventRead(
                action=e.action,
                from_version=e.from_version,
                to_version=e.to_version,
                actor=e.actor,
                at=e.at,
            )
            for e in events
        ],
        **page.answer(total),
    )


@router.post(
    "/models/{name}/aliases/{alias}/rollback",
    response_model=AliasMoved,
    responses=error_responses(403, 404, 409, 422),
)
async def rollback_alias(
    name: ModelName,
    alias: AliasName,
    editor: EditorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> AliasMoved:
    """Move the alias back to the version it pointed at before its last move."""
    model = await service.require_model(session=session, name=name)
    previous, target = await alias_service.rollback_alias(
        session=session, kv=ctx.kv, actor=editor.username, model=model, alias=alias
    )
    return AliasMoved(model=name, alias=alias, version=target, previous_version=previous)


@router.get(
    "/settings/default-model",
    response_model=DefaultModelRead,
    tags=["settings"],
    responses=error_responses(404),
)
async def get_default_model(
    _: CurrentPrincipal, session: SessionDep, ctx: ContextDep
) -> DefaultModelRead:
    name, source = await defaults.get_default_model(session=session, settings=ctx.settings)
    return DefaultModelRead(name=name, source=source)


@router.put(
    "/settings/default-model",
    response_model=DefaultModelRead,
    tags=["settings"],
    responses=error_responses(*JSON_BODY, 403, 404, 409),
)
async def set_default_model(
    body: DefaultModelSet, admin: AdminPrincipal, session: SessionDep, ctx: ContextDep
) -> DefaultModelRead:
    """Choose the model that ``POST /api/v1/models/predict`` serves (its production alias)."""
    await defaults.set_default_model(
        session=session, kv=ctx.kv, actor=admin.username, name=body.name
    )
    return DefaultModelRead(name=body.name, source="api")
