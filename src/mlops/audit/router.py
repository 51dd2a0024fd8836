"""``GET /api/v1/audit``: who changed what, when (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mlops.api.deps import AdminPrincipal, SessionDep
from mlops.api.openapi import AUTHENTICATED, error_responses
from mlops.audit.schemas import AuditEventList, AuditEventRead
from mlops.audit.service import list_events
from mlops.db.paging import Page
from mlops.errors import Invalid
from mlops.isotime import IsoDatetime

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=error_responses(*AUTHENTICATED))


@router.get("/audit", response_model=AuditEventList, responses=error_responses(403, 422))
async def audit_log(
    _: AdminPrincipal,
    session: SessionDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[
        str | None, Query(max_length=255, description="Prefix, e.g. 'model:demo'.")
    ] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. 'alias.moved'.")] = None,
    since: Annotated[IsoDatetime | None, Query(description="ISO 8601 with time zone.")] = None,
    until: Annotated[IsoDatetime | None, Query(description="ISO 8601 with time zone.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditEventList:
    if since is not None and until is not None and since > until:
        raise Invalid(
            f"since ({since.isoformat()}) is after until ({until.isoformat()}): no event "
            "can match; swap them",
            code="validation_error",
        )
    page = Page(limit, offset)  # the audit log allows larger pages than other lists
    events, total = await list_events(
        session=session,
        actor=actor,
        target=target,
        action=action,
        since=since,
        until=until,
        page=page,
    )
    return AuditEventList(
        items=[AuditEventRead.model_validate(e) for e in events], **page.answer(total)
    )
