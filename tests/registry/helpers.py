"""Small helpers for registry tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Platform, bearer


async def create_model(platform: Platform, token: str, name: str, **body: Any) -> httpx.Response:
    return await platform.client.post(
        "/api/v1/models", json={"name": name, **body}, headers=bearer(token)
    )


async def upload(
    platform: Platform,
    token: str,
    name: str,
    path: Path,
    metadata: dict[str, Any] | str | None = None,
    filename: str | None = None,
) -> httpx.Response:
    data = {}
    if metadata is not None:
        data["metadata"] = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return await platform.client.post(
        f"/api/v1/models/{name}/versions",
        files={"file": (filename or path.name, path.read_bytes(), "application/octet-stream")},
        data=data,
        headers=bearer(token),
    )


async def stored_keys(platform: Platform) -> list[str]:
    return await platform.ctx.store.list_keys("")


async def row_counts(platform: Platform) -> tuple[int, int]:
    from sqlalchemy import func, select

    from mlops.registry.models import ModelVersion, RegisteredModel

    async with platform.ctx.sessions() as session:
        models = await session.scalar(select(func.count()).select_from(RegisteredModel))
        versions = await session.scalar(select(func.count()).select_from(ModelVersion))
    return int(models or 0), int(versions or 0)
