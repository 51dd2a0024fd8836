"""Serving fixtures: a platform with the API and the model server in one app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlops.serving.dataplane import DataPlane
from tests.conftest import Platform, bearer, start_platform
from tests.registry.conftest import model_files, registry_bucket, registry_settings
from tests.registry.helpers import create_model, upload

__all__ = ["model_files", "registry_bucket", "registry_settings"]


def dataplane(platform: Platform) -> DataPlane:
    plane: DataPlane = platform.app.state.dataplane
    return plane


async def refresh(platform: Platform) -> None:
    """Apply registry changes now (the follower would within the poll interval)."""
    await dataplane(platform).manager.refresh()


@pytest.fixture
async def platform(registry_settings: Any) -> AsyncIterator[Platform]:
    """Overrides the root ``platform``, so ``admin_token`` logs in to this one."""
    async for running in start_platform(registry_settings()):
        yield running


@pytest.fixture
def serving(platform: Platform) -> Platform:
    return platform


async def release(
    platform: Platform, token: str, name: str, files: list[Path], alias_version: int = 1
) -> None:
    """Create ``name``, upload ``files`` as versions 1..n, point production at one."""
    assert (await create_model(platform, token, name)).status_code == 201
    for path in files:
        response = await upload(platform, token, name, path)
        assert response.status_code == 201, response.text
    moved = await platform.client.put(
        f"/api/v1/models/{name}/aliases/production",
        json={"version": alias_version},
        headers=bearer(token),
    )
    assert moved.status_code == 200
    await refresh(platform)
