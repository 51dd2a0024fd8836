"""``drift``: compare each monitored version's live samples with its reference.

A version is monitored once it has a reference data set. Its profile (per-feature bins
and quantiles, and the distribution of its predictions on the reference rows) is
computed once and kept. Each report covers the samples written since the version's
previous report (at most the last 24 hours): population stability index and KS
statistic per numeric feature, PSI per categorical feature and for the predictions.
Samples older than 7 days are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlops.db.base import utcnow
from mlops.modelformats import Signature
from mlops.registry.models import ModelVersion, RegisteredModel
from mlops.serving.sampling import samples_prefix
from mlops.workers.context import StepContext, StepDone, check_abort
from mlops.workers.drift.data import read_reference, read_samples
from mlops.workers.drift.stats import DRIFT_PSI, compare, profile
from mlops.workers.jobs.names import DRIFT
from mlops.workers.locations import Location
from mlops.workers.models import DriftReference, DriftReport, Job, JobTask
from mlops.workers.queue import SUCCEEDED, Lease
from mlops.workers.runtimes import VersionFile
from mlops.workers.tables import feature_columns

TYPE = DRIFT
MIN_SAMPLES = 100
WINDOW_SECONDS = 24 * 3600
RETENTION_SECONDS = 7 * 24 * 3600
MAX_LIVE_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class Target:
    model_id: int
    version: VersionFile
    reference_uri: str
    reference_format: str
    profile: dict[str, Any] | None
    since: float  # unix time: samples written from then on


async def _targets(ctx: StepContext, job: Job) -> list[Target]:
    async with ctx.sessions() as session:
        query = (
            select(ModelVersion, RegisteredModel, DriftReference)
            .join(DriftReference, DriftReference.version_id == ModelVersion.id)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(RegisteredModel.archived_at.is_(None), ModelVersion.archived_at.is_(None))
            .order_by(RegisteredModel.name, ModelVersion.version)
        )
        if job.model_id is not None:
            query = query.where(RegisteredModel.id == job.model_id)
        rows = (await session.execute(query)).all()
        targets = []
        for version, model, reference in rows:
            last: datetime | None = await session.scalar(
                select(func.max(DriftReport.computed_at)).where(
                    DriftReport.model_id == model.id, DriftReport.version == version.version
                )
            )
            since = max(time.time() - WINDOW_SECONDS, last.timestamp() if last else 0.0)
            targets.append(
                Target(
                    model_id=model.id,
                    version=VersionFile(
                        model=model.name,
                        version=version.version,
                        format=version.format,
                        filename=version.filename,
                        storage_key=version.storage_key,
                        sha256=version.sha256,
                        signature=Signature.model_validate(version.signature),
                        details=dict(version.details),
                    ),
                    reference_uri=reference.uri,
                    reference_format=reference.format,
                    profile=reference.profile,
                    since=since,
                )
            )
        return targets


async def _profile(ctx: StepContext, target: Target, job_id: int) -> dict[str, Any]:
    columns = feature_columns(target.version.signature)
    dest = ctx.work_dir / f"drift-{job_id}-reference.{target.reference_format}"
    ctx.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = await ctx.objects.fetch(ctx.location(target.reference_uri), dest)
    try:
        x = await asyncio.to_thread(read_reference, path, target.reference_format, columns)
    finally:
        if path == dest:
            dest.unlink(missing_ok=True)
    runtime = await ctx.runtimes.get(target.version)
    dtype = np.dtype(target.version.signature.input_dtype)
    finite = np.isfinite(x).all(axis=1)
    predictions = await asyncio.to_thread(lambda: runtime.predict(x[finite].astype(dtype)).values)
    return {
        "rows": len(x),
        "features": {name: profile(x[:, i]) for i, name in enumerate(columns)},
        "prediction": profile(np.asarray(predictions)),
    }


def _written_at(key: str) -> float | None:
    name = key.rsplit("/", 1)[-1]
    stamp = name.split("-", 1)[0]
    return int(stamp) / 1000 if stamp.isdigit() else None


async def _samples(ctx: StepContext, target: Target, job_id: int) -> tuple[np.ndarray, np.ndarray]:
    version = target.version
    keys = await ctx.objects.store.list_keys(samples_prefix(version.model, version.version))
    now = time.time()
    recent: list[tuple[float, str]] = []
    for key in keys:
        written = _written_at(key)
        if written is None:
            continue
        if written < now - RETENTION_SECONDS:
            await ctx.objects.store.delete(key)
        elif written >= target.since:
            recent.append((written, key))
    paths: list[Path] = []
    downloads: list[Path] = []
    ctx.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        for index, (_, key) in enumerate(sorted(recent, reverse=True)):
            dest = ctx.work_dir / f"drift-{job_id}-sample-{index}.parquet"
            path = await ctx.objects.fetch(Location("platform", key), dest)
            if path == dest:
                downloads.append(dest)
            paths.append(path)
        columns = feature_columns(version.signature)
        x, predictions = await asyncio.to_thread(read_samples, paths, columns)
    finally:
        for path in downloads:
            with contextlib.suppress(OSError):
                path.unlink()
    return x[:MAX_LIVE_ROWS], predictions[:MAX_LIVE_ROWS]


def _report(
    target: Target, reference: dict[str, Any], x: np.ndarray, predictions: np.ndarray
) -> DriftReport:
    columns = feature_columns(target.version.signature)
    features: dict[str, Any] = {}
    prediction_psi = None
    if len(x):
        for i, name in enumerate(columns):
            result = compare(reference["features"][name], x[:, i])
            result["drifted"] = result["psi"] is not None and result["psi"] > DRIFT_PSI
            features[name] = result
        prediction_psi = compare(reference["prediction"], predictions)["psi"]
    drifted = any(f["drifted"] for f in features.values()) or (
        prediction_psi is not None and prediction_psi > DRIFT_PSI
    )
    status = "insufficient_data" if len(x) < MIN_SAMPLES else ("drift" if drifted else "ok")
    return DriftReport(
        model_id=target.model_id,
        version=target.version.version,
        samples=len(x),
        status=status,
        features=features,
        prediction_psi=prediction_psi,
    )


async def run(ctx: StepContext, lease: Lease, abort: threading.Event) -> StepDone:
    job = await ctx.job_of(lease)
    reports: list[DriftReport] = []
    profiles: dict[tuple[int, int], dict[str, Any]] = {}
    for target in await _targets(ctx, job):
        check_abort(abort)
        reference = target.profile
        if reference is None:
            reference = await _profile(ctx, target, job.id)
            profiles[(target.model_id, target.version.version)] = reference
        x, predictions = await _samples(ctx, target, job.id)
        reports.append(_report(target, reference, x, predictions))
        # The gauges follow from the stored reports (drift/gauges.py), in every worker.

    def apply(session: Session, job: Job, task: JobTask) -> None:
        for (model_id, number), computed in profiles.items():
            version_id = session.scalar(
                select(ModelVersion.id).where(
                    ModelVersion.model_id == model_id, ModelVersion.version == number
                )
            )
            reference = session.get(DriftReference, version_id)
            if reference is not None:
                reference.profile = computed
        session.add_all(reports)
        job.status = SUCCEEDED
        job.result = {**job.result, "reports": len(reports)}
        job.files_removed_at = utcnow()  # a drift job writes no shard files

    return StepDone(apply, shard_files=False)
