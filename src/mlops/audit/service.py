"""Recording audit events inside the caller's transaction, so a change and its record
are committed together or not at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.models import AuditEvent
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
