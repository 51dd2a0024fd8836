"""Reading and changing deployment policies, and recording what serving reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.deployments.models import Deployment
from mlops.deployments.schemas import DeploymentPolicy
from mlops.errors import Conflict
from mlops.kv import KeyValueStore
from mlops.registry.aliases import find_alias
from mlops.registry.events import notify_after_commit
from mlops.registry.models import RegisteredModel
from mlops.registry.versions import READY, require_version


async def get_deployment(*, session: AsyncSession, model: RegisteredModel) -> Deployment | None:
    return await session.get(Deployment, model.id)


async def _check_version(session: AsyncSession, model: RegisteredModel, version: int) -> None:
    row = await require_version(session=session, model=model, version=version)
    if row.status != READY:
        raise Conflict(
            f"version {version} of {model.name!r} is {row.status} and cannot take traffic",
            code="version_not_ready",
        )


async def _check_routes(
    session: AsyncSession, model: RegisteredModel, policy: DeploymentPolicy
) -> None:
    """Refuse a policy that would serve nothing, or compare a version with itself."""
    primary = await find_alias(session=session, model=model, alias=policy.alias)
    if primary is None:
        # Applied, it would leave the model without a servable version at once.
        raise Conflict(
            f"alias {policy.alias!r} of {model.name!r} points at no version: release one "
            f"first (PUT /api/v1/models/{model.name}/aliases/{policy.alias} "
            '{"version": N})',
            code="alias_not_set",
        )
    for role, route in (("canary", policy.canary), ("shadow", policy.shadow)):
        if route is None:
            continue
        await _check_version(session, model, route.version)
        if route.version == primary[1]:
            raise Conflict(
                f"version {route.version} already takes the traffic (alias "
                f"{policy.alias!r}): a {role} needs another version",
                code=f"{role}_is_primary",
            )


async def set_policy(
    *,
    session: AsyncSession,
    kv: KeyValueStore,
    actor: str,
    model: RegisteredModel,
    policy: DeploymentPolicy,
) -> Deployment:
    await _check_routes(session, model, policy)
    deployment = await get_deployment(session=session, model=model)
    before = None if deployment is None else deployment.policy
    new_policy = policy.model_dump(mode="json")
    if deployment is None:
        deployment = Deployment(model_id=model.id, policy=new_policy, status={}, updated_by=actor)
        session.add(deployment)
    else:
        deployment.policy = new_policy
        deployment.updated_by = actor
        # A new policy starts a fresh record of what serving saw.
        deployment.status = {}
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="deployment.updated",
        target=f"model:{model.name}",
        before=before,
        after=new_policy,
    )
    notify_after_commit(session, kv, model.name, "deployment")
    return deployment


async def primary_version(
    *, session: AsyncSession, model: RegisteredModel, policy: DeploymentPolicy
) -> int | None:
    found = await find_alias(session=session, model=model, alias=policy.alias)
    return None if found is None else found[1]


async def record_canary_rollback(
    *,
    session: AsyncSession,
    kv: KeyValueStore,
    model: RegisteredModel,
    version: int,
    reason: str,
) -> bool:
    """Drop the canary from the policy; False when it was already gone (another process)."""
    deployment = await get_deployment(session=session, model=model)
    if deployment is None:
        return False
    policy = DeploymentPolicy.model_validate(deployment.policy)
    if policy.canary is None or policy.canary.version != version:
        return False
    before = deployment.policy
    deployment.policy = policy.model_copy(update={"canary": None, "guard": None}).model_dump(
        mode="json"
    )
    status: dict[str, Any] = dict(deployment.status)
    status["canary_rollback"] = {
        "version": version,
        "reason": reason,
        "at": datetime.now(UTC).isoformat(),
    }
    deployment.status = status
    deployment.updated_by = "guard"
    await session.flush()
    await record_event(
        session=session,
        actor="guard",
        action="deployment.canary_rolled_back",
        target=f"model:{model.name}",
        before=before,
        after={"policy": deployment.policy, "reason": reason},
    )
    notify_after_commit(session, kv, model.name, "deployment")
    return True


async def record_load_failure(
    *, session: AsyncSession, model: RegisteredModel, version: int, reason: str
) -> None:
    deployment = await get_deployment(session=session, model=model)
    if deployment is None:
        deployment = Deployment(
            model_id=model.id,
            policy=DeploymentPolicy().model_dump(mode="json"),
            status={},
            updated_by="system",
        )
        session.add(deployment)
    status: dict[str, Any] = dict(deployment.status)
    failures = dict(status.get("load_failures", {}))
    failures[str(version)] = {"reason": reason, "at": datetime.now(UTC).isoformat()}
    status["load_failures"] = failures
    deployment.status = status
    await session.flush()
