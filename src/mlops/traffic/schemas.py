"""Response body of ``GET /api/v1/models/{name}/traffic``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["primary", "canary", "shadow", "other"]
Source = Literal["in-process", "prometheus"]


class TrafficPoint(BaseModel):
    t: float = Field(description="End of the interval (Unix time).")
    rps: float = Field(description="Prediction requests per second.")
    p95_ms: float | None = Field(description="p95 request latency; null without requests.")
    error_rate: float | None = Field(description="Share of requests that failed (0-1).")


class VersionSeries(BaseModel):
    version: int
    role: Role
    points: list[TrafficPoint]


class TrafficRead(BaseModel):
    model: str
    source: Source
    window_s: float
    step_s: float
    series: list[VersionSeries]
