"""The drift gauges, exported from the latest stored report of each monitored version.

Every worker reads them from the database (at start, every ``REFRESH_SECONDS``, and
after a drift job it ran), so every worker replica shows the same values whichever
computed the report; the alert takes ``max by (model, version, feature)`` over
replicas, which neither double-counts nor flaps. A report without enough samples
(``insufficient_data``) has no PSI: the version keeps its last measured values. An
archived model or version drops out of the gauges.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.registry.models import ModelVersion, RegisteredModel
from mlops.workers.metrics import JobMetrics
from mlops.workers.models import DriftReport

REFRESH_SECONDS = 30.0
MEASURED = ("ok", "drift")


@dataclass(frozen=True, slots=True)
class VersionPsi:
    model: str
    version: int
    features: dict[str, float]
    prediction: float | None


async def latest_measured(sessions: async_sessionmaker[AsyncSession]) -> list[VersionPsi]:
    """Each live version's latest report that measured something."""
    latest = (
        select(func.max(DriftReport.id).label("id"))
        .where(DriftReport.status.in_(MEASURED))
        .group_by(DriftReport.model_id, DriftReport.version)
        .subquery()
    )
    query = (
        select(RegisteredModel.name, DriftReport)
        .join(latest, latest.c.id == DriftReport.id)
        .join(RegisteredModel, RegisteredModel.id == DriftReport.model_id)
        .join(
            ModelVersion,
            (ModelVersion.model_id == DriftReport.model_id)
            & (ModelVersion.version == DriftReport.version),
        )
        .where(RegisteredModel.archived_at.is_(None), ModelVersion.archived_at.is_(None))
        .order_by(RegisteredModel.name, DriftReport.version)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        VersionPsi(
            model=name,
            version=report.version,
            features={
                feature: float(result["psi"])
                for feature, result in report.features.items()
                if result.get("psi") is not None
            },
            prediction=report.prediction_psi,
        )
        for name, report in rows
    ]


class DriftGauges:
    """Sets ``mlops_feature_drift_psi`` and ``mlops_prediction_drift_psi`` to the
    stored values, and removes the series of versions no longer in them."""

    def __init__(self, metrics: JobMetrics) -> None:
        self._metrics = metrics

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Export the database's values; how many versions have them."""
        versions = await latest_measured(sessions)
        features: set[tuple[str, ...]] = set()
        predictions: set[tuple[str, ...]] = set()
        for psi in versions:
            labels = (psi.model, str(psi.version))
            for feature, value in psi.features.items():
                self._metrics.feature_drift.labels(*labels, feature).set(value)
                features.add((*labels, feature))
            if psi.prediction is not None:
                self._metrics.prediction_drift.labels(*labels).set(psi.prediction)
                predictions.add(labels)
        # Set first, then remove: a scrape in between sees no gap in a live series.
        _remove_others(self._metrics.feature_drift, ("model", "version", "feature"), features)
        _remove_others(self._metrics.prediction_drift, ("model", "version"), predictions)
        return len(versions)


def _remove_others(gauge: Gauge, names: tuple[str, ...], keep: set[tuple[str, ...]]) -> None:
    present = {
        tuple(sample.labels[name] for name in names)
        for family in gauge.collect()
        for sample in family.samples
    }
    for labels in present - keep:
        with contextlib.suppress(KeyError):  # removed meanwhile by another worker object
            gauge.remove(*labels)
