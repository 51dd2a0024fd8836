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
from tests.registry.model_files import training_data

__all__ = ["model_files", "registry_bucket", "registry_settings"]


def dataplane(platform: Platform) -> DataPlane:
    plane: DataPlane = platform.app.state.dataplane
    return plane


async def refresh(platform: Platform) -> None:
    """Apply registry changes now (the follower would within the poll interval)."""
    await dataplane(platform).manager.refresh()


@pytest.fixture(scope="session")
def impostor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid ONNX model with the test models' signature that predicts the opposite
    class: what someone who can write to the artifact store would swap in."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = training_data()
    flipped = LogisticRegression(max_iter=200).fit(x, 1 - y)
    graph = to_onnx(flipped, x[:1], options={id(flipped): {"zipmap": False}})
    path = tmp_path_factory.mktemp("impostor") / "impostor.onnx"
    path.write_bytes(graph.SerializeToString())
    return path


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
