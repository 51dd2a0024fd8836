"""Drift references and reports as the API sees them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.db.base import utcnow
from mlops.db.paging import Page, fetch_object_page
from mlops.errors import Invalid, NotFound
from mlops.registry.models import ModelVersion, RegisteredModel
from mlops.workers.drift.schemas import DriftReportRead, ReferenceRead, VersionDrift
from mlops.workers.locations import format_of, parse_location
from mlops.workers.models import DriftReference, DriftReport
from mlops.workers.objects import ObjectAccess


async def set_reference(
    *,
    session: AsyncSession,
    objects: ObjectAccess,
    buckets: frozenset[str],
    actor: str,
    model: RegisteredModel,
    version: ModelVersion,
    uri: str,
    fmt: str | None,
) -> ReferenceRead:
    """Point the version at its reference data set; its profile is computed again."""
    location = parse_location(uri, allowed_buckets=buckets, role="input")
    fmt = fmt or format_of(uri)
    if fmt is None:
        raise Invalid(
            f'cannot tell the format of {uri!r} from its name; give "format"',
            code="unknown_format",
        )
    if await objects.size(location) is None:
        raise NotFound(
            f"reference {uri!r} does not exist; upload it with POST /api/v1/datasets",
            code="input_not_found",
        )
    reference = await session.get(DriftReference, version.id)
    if reference is None:
        reference = DriftReference(version_id=version.id, uri=uri, format=fmt, updated_by=actor)
        session.add(reference)
    reference.uri, reference.format, reference.profile = uri, fmt, None
    reference.updated_by, reference.updated_at = actor, utcnow()
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="version.reference_set",
        target=f"model:{model.name}/v{version.version}",
        after={"uri": uri, "format": fmt},
    )
    return reference_read(model, version, reference)


def reference_read(
    model: RegisteredModel, version: ModelVersion, reference: DriftReference
) -> ReferenceRead:
    return ReferenceRead(
        model=model.name,
        version=version.version,
        uri=reference.uri,
        format=reference.format,
        updated_by=reference.updated_by,
        updated_at=reference.updated_at,
    )


def report_read(report: DriftReport) -> DriftReportRead:
    return DriftReportRead(
        version=report.version,
        computed_at=report.computed_at,
        status=report.status,
        samples=report.samples,
        features=report.features,
        prediction_psi=report.prediction_psi,
    )


async def model_drift(
    *, session: AsyncSession, model: RegisteredModel, version: int | None, page: Page
) -> tuple[list[VersionDrift], list[DriftReportRead], int]:
    """Each monitored version's reference and latest report; one page of the history."""
    rows = (
        await session.execute(
            select(ModelVersion, DriftReference)
            .outerjoin(DriftReference, DriftReference.version_id == ModelVersion.id)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version)
        )
    ).all()
    versions = []
    for row, reference in rows:
        if version is not None and row.version != version:
            continue
        latest = await session.scalar(
            select(DriftReport)
            .where(DriftReport.model_id == model.id, DriftReport.version == row.version)
            .order_by(DriftReport.computed_at.desc(), DriftReport.id.desc())
            .limit(1)
        )
        if reference is None and latest is None:
            continue
        versions.append(
            VersionDrift(
                version=row.version,
                reference=reference_read(model, row, reference) if reference else None,
                latest=report_read(latest) if latest else None,
            )
        )
    query = select(DriftReport).where(DriftReport.model_id == model.id)
    if version is not None:
        query = query.where(DriftReport.version == version)
    reports, total = await fetch_object_page(
        session, query.order_by(DriftReport.computed_at.desc(), DriftReport.id.desc()), page
    )
    return versions, [report_read(r) for r in reports], total
