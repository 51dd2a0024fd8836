"""Bodies of the drift endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.api.paging import PagedList


class ReferenceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(
        min_length=1,
        max_length=1024,
        description="A data set with the model's feature columns: an uploaded data set's "
        "uri (datasets/...) or s3://BUCKET/KEY.",
    )
    format: str | None = Field(None, pattern="^(csv|parquet|jsonl)$")


class ReferenceRead(BaseModel):
    model: str
    version: int
    uri: str
    format: str
    updated_by: str
    updated_at: datetime


class DriftReportRead(BaseModel):
    version: int
    computed_at: datetime
    status: str = Field(description="ok, drift (a PSI above 0.2) or insufficient_data.")
    samples: int
    features: dict[str, Any] = Field(
        description="Per feature: kind (numeric or categorical), psi, ks (numeric), drifted."
    )
    prediction_psi: float | None


class VersionDrift(BaseModel):
    version: int
    reference: ReferenceRead | None
    latest: DriftReportRead | None


class DriftRead(PagedList):
    model: str
    versions: list[VersionDrift]
    history: list[DriftReportRead] = Field(description="Reports, newest first, a page at a time.")
