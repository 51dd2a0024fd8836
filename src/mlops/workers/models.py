"""ORM models of jobs: one row per job, one row per task (plan, shard, assemble) of it.

The tasks are the queue: a worker claims one with a lease (owner, random token,
expiry) and keeps it alive with heartbeats; a task whose lease expired is claimed
again by another worker. Every state change of a task is conditioned on its token,
so a worker that lost its lease can no longer change anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mlops.db.base import Base, UTCDateTime, utcnow

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("registered_models.id", ondelete="SET NULL"), nullable=True, index=True
    )
    model_name: Mapped[str | None] = mapped_column(String(63), nullable=True)
    # Resolved once at submission: moving the alias later changes nothing here.
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alias: Mapped[str | None] = mapped_column(String(63), nullable=True)
    input_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    output_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rows_total: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    rows_done: Mapped[int] = mapped_column(_BIGINT, default=0)
    shards_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shards_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When its shard files were deleted (after it ended; a sweep retries if a worker died).
    files_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobTask(Base):
    __tablename__ = "job_tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", "index"),
        # The claim query: ready tasks first by job, then by index.
        Index("ix_job_tasks_claim", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # plan | shard | assemble | drift
    index: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    # The shard's rows [row_start, row_end), and for line formats the bytes they span.
    row_start: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    row_end: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    byte_start: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    byte_end: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rows: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobSchedule(Base):
    """When a periodic job (drift monitoring) is next due; the worker that moves
    ``next_run_at`` forward with a conditional UPDATE is the one that queues it."""

    __tablename__ = "job_schedules"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DriftReference(Base):
    """A version's reference data set (its training data, say) and, once computed,
    its profile: per-feature bin edges and shares, and the prediction distribution."""

    __tablename__ = "drift_references"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    uri: Mapped[str] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(16))
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DriftReport(Base):
    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    samples: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24))  # ok | drift | insufficient_data
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prediction_psi: Mapped[float | None] = mapped_column(nullable=True)
