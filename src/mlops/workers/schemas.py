"""Request and response bodies of the jobs and datasets endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops.api.paging import PagedList
from mlops.registry.schemas import NAME_PATTERN

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Format = Literal["csv", "parquet", "jsonl"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobOptions(_Strict):
    return_probabilities: bool = Field(
        False, description="Add a probability_<class> column per class (classifiers)."
    )
    shard_rows: int = Field(
        100_000, ge=1, le=1_000_000, description="Rows per shard (the unit of work and retry)."
    )


class JobCreate(_Strict):
    type: Literal["batch_predict"] = "batch_predict"
    model: str = Field(pattern=NAME_PATTERN, description="Model name.")
    alias: str | None = Field(
        None, pattern=NAME_PATTERN, description="Alias to resolve now (default production)."
    )
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="Exact version.")
    input: str = Field(min_length=1, max_length=1024, description="Platform path or s3:// URI.")
    output: str | None = Field(
        None, min_length=1, max_length=1024, description="Default: jobs/<id>/output.<format>."
    )
    format: Format | None = Field(None, description="Default: from the input's extension.")
    options: JobOptions = Field(default_factory=JobOptions)

    @model_validator(mode="after")
    def _one_selector(self) -> JobCreate:
        if self.alias is not None and self.version is not None:
            raise ValueError("give alias or version, not both")
        return self


class JobRead(BaseModel):
    id: int
    type: str
    status: JobStatus
    model: str | None
    version: int | None
    alias: str | None
    input: str | None
    output: str | None
    format: str | None
    options: dict[str, Any]
    rows_done: int
    rows_total: int | None
    shards_done: int
    shards_total: int | None
    attempts: int
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    download: str | None = Field(
        description="Where to download the output (platform storage, once succeeded)."
    )


class JobList(PagedList):
    items: list[JobRead]


class DatasetRead(BaseModel):
    uri: str = Field(description="Give this as a job's input.")
    filename: str
    format: Format
    size: int
    sha256: str
