"""ORM model of a model's deployment policy and its status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mlops.db.base import Base, UTCDateTime, utcnow


class Deployment(Base):
    __tablename__ = "deployments"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Events the serving side reports: an automatic canary rollback, say.
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
