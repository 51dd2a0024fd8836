"""Request and response bodies of the registry endpoints."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from mlops.api.paging import PagedList

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
RESERVED_NAMES = frozenset({"predict"})
MAX_TAGS = 50

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s:]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256)]


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} entries")
    return value


Tags = Annotated[dict[TagKey, TagValue], AfterValidator(_bounded)]


def _model_name(value: str) -> str:
    if value in RESERVED_NAMES:
        raise ValueError(f"{value!r} is reserved (POST /api/v1/models/predict)")
    return value


ModelName = Annotated[Name, AfterValidator(_model_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCreate(_Strict):
    name: ModelName = Field(description="Lower-case letters, digits, '.', '_' and '-'; 1-63.")
    description: str = Field("", max_length=10_000)
    tags: Tags = Field(default_factory=dict)


class ModelUpdate(_Strict):
    description: str | None = Field(None, max_length=10_000)
    tags: Tags | None = None


class AliasRead(BaseModel):
    name: str
    version: int
    updated_by: str
    updated_at: datetime


class ModelRead(BaseModel):
    name: str
    description: str
    tags: dict[str, str]
    latest_version: int | None
    aliases: list[AliasRead]
    created_by: str
    created_at: datetime
    updated_at: datetime
    archived: bool


class ModelList(PagedList):
    items: list[ModelRead]


class VersionMetadata(_Strict):
    """The optional ``metadata`` form field of an upload, as JSON."""

    description: str = Field("", max_length=10_000)
    tags: Tags = Field(default_factory=dict)
    metrics: dict[TagKey, float] = Field(default_factory=dict)
    params: dict[TagKey, str | int | float | bool | None] = Field(default_factory=dict)
    source_uri: str | None = Field(None, max_length=1024)
    git_commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,64}$")
    dataset_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    run_id: str | None = Field(None, max_length=128)
    reference_uri: str | None = Field(
        None,
        max_length=1024,
        description="Reference data set for drift monitoring (datasets/... or s3://).",
    )

    @field_validator("metrics", "params")
    @classmethod
    def _bounded_and_finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        _bounded(value)
        for key, number in value.items():
            if isinstance(number, float) and not math.isfinite(number):
                raise ValueError(f"{key}: NaN and infinity cannot be stored as JSON")
        return value


class VersionUpdate(_Strict):
    description: str | None = Field(None, max_length=10_000)
    tags: Tags | None = None


class Lineage(BaseModel):
    source_uri: str | None
    git_commit: str | None
    dataset_sha256: str | None
    run_id: str | None


class VersionRead(BaseModel):
    model: str
    version: int
    status: str
    format: str
    filename: str
    sha256: str
    size: int
    signature: dict[str, Any]
    runtime: dict[str, Any]
    description: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, Any]
    lineage: Lineage
    aliases: list[str]
    created_by: str
    created_at: datetime
    archived_at: datetime | None


class VersionList(PagedList):
    items: list[VersionRead]


class AliasSet(_Strict):
    version: int = Field(ge=1, le=2**31 - 1)


class AliasEventRead(BaseModel):
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime


class AliasHistory(PagedList):
    model: str
    alias: str
    current_version: int | None
    events: list[AliasEventRead]


class DefaultModelSet(_Strict):
    name: ModelName


class DefaultModelRead(BaseModel):
    name: str | None
    source: str = Field(description="'api' when set by an admin, 'environment', or 'unset'.")
