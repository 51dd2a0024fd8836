"""Aliases: named pointers at versions. Moving one releases a version; every move
is kept, and rollback moves the alias back to where it was before the last move."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.db.paging import Page, fetch_object_page
from mlops.errors import Conflict, NotFound
from mlops.kv import KeyValueStore
from mlops.registry.events import notify_after_commit
from mlops.registry.models import AliasEvent, ModelAlias, ModelVersion, RegisteredModel
from mlops.registry.versions import READY, require_version


async def find_alias(
    *, session: AsyncSession, model: RegisteredModel, alias: str
) -> tuple[ModelAlias, int] | None:
    row = (
        await session.execute(
            select(ModelAlias, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.model_id == model.id, ModelAlias.name == alias)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def require_alias(
    *, session: AsyncSession, model: RegisteredModel, alias: str
) -> tuple[ModelAlias, int]:
    found = await find_alias(session=session, model=model, alias=alias)
    if found is None:
        raise NotFound(f"model {model.name!r} has no alias {alias!r}", code="alias_not_found")
    return found


async def _move(
    *,
    session: AsyncSession,
    kv: KeyValueStore,
    actor: str,
    model: RegisteredModel,
    alias: str,
    version: int,
    action: str,
) -> int | None:
    target = await require_version(session=session, model=model, version=version)
    if target.status != READY:
        raise Conflict(
            f"version {version} of {model.name!r} is {target.status} and cannot be served",
            code="version_not_ready",
        )
    current = await find_alias(session=session, model=model, alias=alias)
    previous = current[1] if current else None
    now = datetime.now(UTC)
    if current is None:
        session.add(
            ModelAlias(
                model_id=model.id,
                name=alias,
                version_id=target.id,
                updated_by=actor,
                updated_at=now,
            )
        )
    else:
        current[0].version_id = target.id
        current[0].updated_by = actor
        current[0].updated_at = now
    session.add(
        AliasEvent(
            model_id=model.id,
            alias=alias,
            action=action,
            from_version=previous,
            to_version=version,
            actor=actor,
            at=now,
        )
    )
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action=f"alias.{'rolled_back' if action == 'rollback' else 'moved'}",
        target=f"model:{model.name}@{alias}",
        before={"version": previous},
        after={"version": version},
    )
    notify_after_commit(session, kv, model.name, "alias")
    return previous


async def set_alias(
    *,
    session: AsyncSession,
    kv: KeyValueStore,
    actor: str,
    model: RegisteredModel,
    alias: str,
    version: int,
) -> int | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before."""
    return await _move(
        session=session,
        kv=kv,
        actor=actor,
        model=model,
        alias=alias,
        version=version,
        action="set",
    )


async def delete_alias(
    *, session: AsyncSession, kv: KeyValueStore, actor: str, model: RegisteredModel, alias: str
) -> None:
    current = await require_alias(session=session, model=model, alias=alias)
    await session.delete(current[0])
    session.add(
        AliasEvent(
            model_id=model.id,
            alias=alias,
            action="delete",
            from_version=current[1],
            to_version=None,
            actor=actor,
        )
    )
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="alias.deleted",
        target=f"model:{model.name}@{alias}",
        before={"version": current[1]},
    )
    notify_after_commit(session, kv, model.name, "alias")


def _events_query(model: RegisteredModel, alias: str) -> Select[AliasEvent]:
    return (
        select(AliasEvent)
        .where(AliasEvent.model_id == model.id, AliasEvent.alias == alias)
        .order_by(AliasEvent.id)
    )


async def alias_events(
    *, session: AsyncSession, model: RegisteredModel, alias: str
) -> list[AliasEvent]:
    """Every move, oldest first (what a rollback replays)."""
    return list(await session.scalars(_events_query(model, alias)))


async def alias_events_page(
    *, session: AsyncSession, model: RegisteredModel, alias: str, page: Page
) -> tuple[list[AliasEvent], int]:
    """One page of the moves, oldest first, and how many there are."""
    return await fetch_object_page(session, _events_query(model, alias), page)


def release_stack(events: list[AliasEvent]) -> list[int]:
    """Versions the alias was released to, oldest first, with rolled-back moves undone:
    set v1, set v2, set v3, rollback -> [v1, v2]; a second rollback goes to v1."""
    stack: list[int] = []
    for event in events:
        if event.action == "set" and event.to_version is not None:
            stack.append(event.to_version)
        elif event.action == "rollback" and stack:
            stack.pop()
        elif event.action == "delete":
            stack.clear()
    return stack


async def rollback_alias(
    *, session: AsyncSession, kv: KeyValueStore, actor: str, model: RegisteredModel, alias: str
) -> tuple[int, int]:
    """Move ``alias`` back to the version before its last move: (from, to)."""
    current = await require_alias(session=session, model=model, alias=alias)
    stack = release_stack(await alias_events(session=session, model=model, alias=alias))
    if len(stack) < 2:
        raise Conflict(
            f"alias {alias!r} of {model.name!r} has no earlier version to roll back to",
            code="nothing_to_roll_back",
        )
    target = stack[-2]
    await _move(
        session=session,
        kv=kv,
        actor=actor,
        model=model,
        alias=alias,
        version=target,
        action="rollback",
    )
    return current[1], target
