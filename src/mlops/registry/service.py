"""Registered models: create, read, list, change and archive.

Services flush; the caller's transaction commits.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.db.filters import starts_with
from mlops.db.paging import Page, fetch_object_page
from mlops.errors import Conflict, NotFound
from mlops.kv import KeyValueStore
from mlops.registry.events import notify_after_commit
from mlops.registry.models import ModelAlias, ModelVersion, RegisteredModel
from mlops.registry.schemas import AliasRead, ModelRead


async def find_model(
    *, session: AsyncSession, name: str, include_archived: bool = False
) -> RegisteredModel | None:
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    if not include_archived:
        query = query.where(RegisteredModel.archived_at.is_(None))
    return await session.scalar(query)


async def require_model(
    *, session: AsyncSession, name: str, include_archived: bool = False
) -> RegisteredModel:
    model = await find_model(session=session, name=name, include_archived=include_archived)
    if model is None:
        raise NotFound(
            f"model {name!r} does not exist; create it with POST /api/v1/models",
            code="model_not_found",
        )
    return model


async def create_model(
    *, session: AsyncSession, actor: str, name: str, description: str, tags: dict[str, str]
) -> RegisteredModel:
    existing = await find_model(session=session, name=name, include_archived=True)
    if existing is not None:
        state = "an archived model" if existing.archived_at else "a model"
        raise Conflict(f"{state} named {name!r} already exists", code="model_exists")
    model = RegisteredModel(
        name=name, description=description, tags=tags, last_version=0, created_by=actor
    )
    session.add(model)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a model named {name!r} already exists", code="model_exists") from None
    await record_event(
        session=session,
        actor=actor,
        action="model.created",
        target=f"model:{name}",
        after={"description": description, "tags": tags},
    )
    return model


async def list_models(
    *,
    session: AsyncSession,
    prefix: str | None,
    tag: str | None,
    page: Page,
    include_archived: bool,
) -> tuple[list[RegisteredModel], int]:
    query = select(RegisteredModel)
    if not include_archived:
        query = query.where(RegisteredModel.archived_at.is_(None))
    if prefix:
        query = query.where(starts_with(RegisteredModel.name, prefix))
    if tag:
        key, sep, value = tag.partition(":")
        tag_value = RegisteredModel.tags[key].as_string()
        query = query.where(tag_value == value if sep else tag_value.is_not(None))
    return await fetch_object_page(session, query.order_by(RegisteredModel.name), page)


async def update_model(
    *,
    session: AsyncSession,
    actor: str,
    name: str,
    description: str | None,
    tags: dict[str, str] | None,
) -> RegisteredModel:
    model = await require_model(session=session, name=name)
    before = {"description": model.description, "tags": model.tags}
    if description is not None:
        model.description = description
    if tags is not None:
        model.tags = tags
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="model.updated",
        target=f"model:{name}",
        before=before,
        after={"description": model.description, "tags": model.tags},
    )
    return model


async def aliases_of(*, session: AsyncSession, model_id: int) -> list[tuple[ModelAlias, int]]:
    rows = await session.execute(
        select(ModelAlias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.name)
    )
    return [(alias, version) for alias, version in rows]


async def archive_model(
    *, session: AsyncSession, kv: KeyValueStore, actor: str, name: str, force: bool
) -> RegisteredModel:
    """Archive (never erase). Refused while an alias points at a version, unless forced.

    Model servers are told once it commits, so it stops serving as fast as an alias move
    (an archived model answers 404, by policy or by version number)."""
    model = await require_model(session=session, name=name)
    aliases = await aliases_of(session=session, model_id=model.id)
    if aliases and not force:
        names = ", ".join(f"{a.name} -> v{v}" for a, v in aliases)
        raise Conflict(
            f"model {name!r} is still released through aliases ({names}); delete them first, "
            "or (admins) add ?force=true",
            code="model_in_use",
        )
    for alias, _ in aliases:
        await session.delete(alias)
    model.archived_at = datetime.now(UTC)
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="model.archived",
        target=f"model:{name}",
        before={"aliases": {a.name: v for a, v in aliases}},
        after={"archived": True, "forced": force},
    )
    notify_after_commit(session, kv, name, "archived")
    return model


async def model_read(*, session: AsyncSession, model: RegisteredModel) -> ModelRead:
    aliases = await aliases_of(session=session, model_id=model.id)
    latest = await session.scalar(
        select(func.max(ModelVersion.version)).where(
            ModelVersion.model_id == model.id, ModelVersion.archived_at.is_(None)
        )
    )
    return ModelRead(
        name=model.name,
        description=model.description,
        tags=model.tags,
        latest_version=latest,
        aliases=[
            AliasRead(name=a.name, version=v, updated_by=a.updated_by, updated_at=a.updated_at)
            for a, v in aliases
        ],
        created_by=model.created_by,
        created_at=model.created_at,
        updated_at=model.updated_at,
        archived=model.archived_at is not None,
    )
