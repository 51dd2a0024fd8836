"""Recording audit events inside the caller's transaction, so a change and its record
are committed together or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.models import AuditEvent
from mlops.db.filters import starts_with
from mlops.db.paging import Page, fetch_object_page
from mlops.observability.logs import request_id_var


async def record_event(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        target=target,
        before=before,
        after=after,
        request_id=request_id_var.get(),
    )
    session.add(event)
    await session.flush()
    return event


async def list_events(
    *,
    session: AsyncSession,
    actor: str | None,
    target: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    page: Page,
) -> tuple[list[AuditEvent], int]:
    """Newest first. ``target`` matches a prefix, so ``model:demo`` finds its versions too."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if target:
        query = query.where(starts_with(AuditEvent.target, target))
    if action:
        query = query.where(AuditEvent.action == action)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return await fetch_object_page(session, query.order_by(AuditEvent.id.desc()), page)
