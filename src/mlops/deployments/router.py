"""``PUT``/``GET /api/v1/models/{name}/deployment``: how a model's traffic is served."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from mlops.api.deps import ContextDep, CurrentPrincipal, EditorPrincipal, SessionDep
from mlops.api.openapi import AUTHENTICATED, JSON_BODY, error_responses
from mlops.deployments import service
from mlops.deployments.schemas import DeploymentPolicy, DeploymentRead
from mlops.registry.schemas import NAME_PATTERN
from mlops.registry.service import require_model

router = APIRouter(
    prefix="/api/v1", tags=["deployments"], responses=error_responses(*AUTHENTICATED)
)
ModelName = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.get(
    "/models/{name}/deployment", response_model=DeploymentRead, responses=error_responses(404, 422)
)
async def get_deployment(
    name: ModelName, _: CurrentPrincipal, session: SessionDep
) -> DeploymentRead:
    """The policy, the version its alias points at, and what serving reported
    (an automatic canary rollback, versions that failed to load)."""
    model = await require_model(session=session, name=name)
    row = await service.get_deployment(session=session, model=model)
    policy = DeploymentPolicy() if row is None else DeploymentPolicy.model_validate(row.policy)
    return DeploymentRead(
        model=name,
        policy=policy,
        primary_version=await service.primary_version(session=session, model=model, policy=policy),
        status={} if row is None else row.status,
        updated_by=None if row is None else row.updated_by,
        updated_at=None if row is None else row.updated_at,
    )


@router.put(
    "/models/{name}/deployment",
    response_model=DeploymentRead,
    responses=error_responses(*JSON_BODY, 403, 404, 409),
)
async def set_deployment(
    name: ModelName,
    body: DeploymentPolicy,
    editor: EditorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> DeploymentRead:
    """Set the policy: blue-green (``alias``), ``canary`` {version, percent}, ``shadow``
    {version}, and a ``guard`` that takes a failing canary out of traffic by itself.
    Every model server applies it within seconds, without a restart."""
    model = await require_model(session=session, name=name)
    row = await service.set_policy(
        session=session, kv=ctx.kv, actor=editor.username, model=model, policy=body
    )
    return DeploymentRead(
        model=name,
        policy=body,
        primary_version=await service.primary_version(session=session, model=model, policy=body),
        status=row.status,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
