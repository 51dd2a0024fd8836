"""The default model: what ``POST /api/v1/models/predict`` (no model named) serves."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.config import Settings
from mlops.kv import KeyValueStore
from mlops.registry.events import notify_after_commit
from mlops.registry.models import PlatformSetting
from mlops.registry.service import require_model

DEFAULT_MODEL_KEY = "default_model"


async def get_default_model(*, session: AsyncSession, settings: Settings) -> tuple[str | None, str]:
    """(name, source): set through the API wins over ``MLOPS_DEFAULT_MODEL``."""
    row = await session.get(PlatformSetting, DEFAULT_MODEL_KEY)
    if row is not None:
        return row.value, "api"
    if settings.default_model:
        return settings.default_model, "environment"
    return None, "unset"


async def set_default_model(
    *, session: AsyncSession, kv: KeyValueStore, actor: str, name: str
) -> None:
    await require_model(session=session, name=name)
    row = await session.get(PlatformSetting, DEFAULT_MODEL_KEY)
    before = None if row is None else row.value
    if row is None:
        session.add(PlatformSetting(key=DEFAULT_MODEL_KEY, value=name, updated_by=actor))
    else:
        row.value = name
        row.updated_by = actor
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="settings.default_model",
        target="settings:default_model",
        before={"name": before},
        after={"name": name},
    )
    notify_after_commit(session, kv, name, "default")
