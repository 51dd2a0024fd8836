"""Deployment policy bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops.registry.schemas import Name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Canary(_Strict):
    version: int = Field(ge=1, le=2**31 - 1)
    percent: float = Field(gt=0, le=100, description="Share of requests sent to this version.")


class Shadow(_Strict):
    version: int = Field(ge=1, le=2**31 - 1)


class Guard(_Strict):
    """Limits a canary must keep; breaching one takes it out of traffic automatically."""

    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_p95_ms: float = Field(
        50,
        gt=0,
        le=600_000,
        description="Limit on the p95 of the canary runtime's time per row (milliseconds), "
        "over the batches its requests ran in: not a request's time, which grows with the "
        "rows the caller sends and with its wait in the queue.",
    )
    window_s: float = Field(60, gt=0, le=86_400)
    min_requests: int = Field(
        100,
        ge=1,
        le=10_000_000,
        description="Requests in the window before the guard judges; also the most one "
        "user counts with (their most recent), whatever token or API key they use.",
    )


class DeploymentPolicy(_Strict):
    alias: Name = Field("production", description="The alias whose version takes the traffic.")
    canary: Canary | None = None
    shadow: Shadow | None = None
    guard: Guard | None = None

    @model_validator(mode="after")
    def _guard_needs_canary(self) -> DeploymentPolicy:
        if self.guard is not None and self.canary is None:
            raise ValueError("a guard watches a canary: add a canary, or drop the guard")
        return self


class DeploymentRead(BaseModel):
    model: str
    policy: DeploymentPolicy
    primary_version: int | None = Field(description="Version the policy's alias points at.")
    status: dict[str, Any]
    updated_by: str | None
    updated_at: datetime | None
