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


@pytest.fixture(scope="session")
def same_model(model_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX test model in other bytes: the same answers under another sha256 (a
    version with the same sha256 as a loaded one is served from its cached file)."""
    import onnx

    model = onnx.load(model_files["onnx"])
    model.doc_string = "the same model, uploaded again"
    path = tmp_path_factory.mktemp("same") / "same.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 5-feature ONNX regressor that is genuinely slow: 40 layers of a
    1024 x 1024 matrix, milliseconds per row where the test models take microseconds."""
    import numpy as np
    import onnx
    import onnx.helper as make
    import onnx.numpy_helper

    rng = np.random.default_rng(0)
    width, layers = 1024, 40

    def weights(name: str, rows: int, cols: int) -> onnx.TensorProto:
        values = rng.standard_normal((rows, cols)) / np.sqrt(rows)
        return onnx.numpy_helper.from_array(values.astype(np.float32), name)

    nodes = [make.make_node("MatMul", ["x", "w_in"], ["h0"])]
    for i in range(layers):  # one matrix, applied again and again
        nodes.append(make.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]))
        nodes.append(make.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"]))
    nodes.append(make.make_node("MatMul", [f"h{layers}", "w_out"], ["y"]))
    graph = make.make_graph(
        nodes,
        "slow",
        [make.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 5])],
        [make.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 1])],
        initializer=[
            weights("w_in", 5, width),
            weights("w", width, width),
            weights("w_out", width, 1),
        ],
    )
    model = make.make_model(graph, opset_imports=[make.make_opsetid("", 17)])
    path = tmp_path_factory.mktemp("slow") / "slow.onnx"
    onnx.save(model, path)
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
