"""What a job's steps share inside one worker process."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.config import Settings
from mlops.modelformats import Signature
from mlops.registry.models import ModelVersion, RegisteredModel
from mlops.workers.errors import InputError
from mlops.workers.locations import INPUT_PREFIXES, Location, parse_location
from mlops.workers.metrics import JobMetrics
from mlops.workers.models import Job
from mlops.workers.objects import ObjectAccess
from mlops.workers.queue import Lease, OnComplete
from mlops.workers.runtimes import RuntimeCache, VersionFile

KEEP_VERSIONS = 256


@dataclass(frozen=True, slots=True)
class StepDone:
    """A step's work is done: ``apply`` records it when the task completes."""

    apply: OnComplete
    rows: int | None = None
    # False when the job wrote no shard files (nothing to delete when it ends).
    shard_files: bool = True


class LeaseLost(Exception):
    """The task's lease is gone (expired and taken by another worker, or the job was
    cancelled): stop, and leave the task to whoever holds it now."""


@dataclass
class StepContext:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    objects: ObjectAccess
    runtimes: RuntimeCache
    work_dir: Path
    metrics: JobMetrics | None = None
    _inputs: dict[int, tuple[Path, bool]] = field(default_factory=dict)
    _versions: dict[tuple[int, int], VersionFile] = field(default_factory=dict)

    async def job(self, job_id: int) -> Job:
        async with self.sessions() as session:
            return await session.get_one(Job, job_id)

    async def job_of(self, lease: Lease) -> Job:
        """The leased task's job: as its claim read it (the fields a step uses were
        final by then; a cancel is seen by the heartbeat), else from the database."""
        if lease.job is not None:
            return lease.job
        return await self.job(lease.job_id)

    async def version_file(self, job: Job) -> VersionFile:
        """The version the job resolved at submission, archived since or not: a job
        scores with what it was given. Kept per version: a version's file, format and
        signature never change, and versions are archived, never deleted."""
        if job.model_id is None or job.version is None:
            return await self._read_version(job)  # its model is gone: a clear error
        key = (job.model_id, job.version)
        cached = self._versions.get(key)
        if cached is None:
            cached = await self._read_version(job)
            if len(self._versions) >= KEEP_VERSIONS:
                self._versions.clear()
            self._versions[key] = cached
        return cached

    async def _read_version(self, job: Job) -> VersionFile:
        async with self.sessions() as session:
            row = await session.scalar(
                select(ModelVersion)
                .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                .where(RegisteredModel.id == job.model_id, ModelVersion.version == job.version)
            )
        if row is None:
            raise InputError(f"version {job.version} of model {job.model_name!r} no longer exists")
        return VersionFile(
            model=job.model_name or "",
            version=row.version,
            format=row.format,
            filename=row.filename,
            storage_key=row.storage_key,
            sha256=row.sha256,
            signature=Signature.model_validate(row.signature),
            details=dict(row.details),
        )

    def location(self, uri: str) -> Location:
        """A location stored with a job (checked at submission; checked again here,
        since the allowed buckets may have changed)."""
        return parse_location(
            uri,
            allowed_buckets=self.settings.job_s3_bucket_list,
            role="input",
            prefixes=INPUT_PREFIXES,
        )

    async def input_file(self, job: Job) -> Path:
        """The job's input on local disk, fetched once per job and worker."""
        cached = self._inputs.get(job.id)
        if cached is not None and cached[0].exists():
            return cached[0]
        self.forget_inputs(keep=None)
        assert job.input_uri is not None
        location = self.location(job.input_uri)
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        dest = self.work_dir / f"job-{job.id}-input.{job.format}"
        path = await self.objects.fetch(location, dest)
        self._inputs[job.id] = (path, path == dest)
        return path

    def forget_inputs(self, keep: int | None) -> None:
        """Delete downloaded inputs (never a file read in place)."""
        for job_id, (path, downloaded) in list(self._inputs.items()):
            if job_id != keep:
                if downloaded:
                    with contextlib.suppress(OSError):
                        path.unlink()
                del self._inputs[job_id]


def check_abort(abort: threading.Event) -> None:
    if abort.is_set():
        raise LeaseLost()
