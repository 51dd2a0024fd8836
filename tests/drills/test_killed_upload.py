"""Drill: the API process SIGKILLed in the middle of a model upload, at two points:

- half of a streamed multipart body sent (the server spools it to an unnamed temp file);
- the whole body received, the file copied to ``DATA_DIR/tmp`` and being checked.

Afterwards: no version row, no stored object, no temp file (``DATA_DIR/tmp``, the
system temp dir, the artifact store's own ``.tmp-`` files) once the API is back; the
next upload of the same file succeeds and is version 1. A 24 MB ONNX model makes the
copy and the checks last long enough for the drill to catch the file (an event: the
file appears), not a guessed moment.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnx.helper as make
import onnx.numpy_helper
import pytest

from tests.conftest import ADMIN_PASSWORD, bearer
from tests.drills.cluster import Cluster, ServerProcess

pytestmark = pytest.mark.slow
HIDDEN = 1 << 20  # two weight matrices of 5 x HIDDEN and HIDDEN x 1 floats: 24 MB
WAIT_S = 60.0


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 5-feature ONNX regressor of 24 MB."""
    rng = np.random.default_rng(0)
    w_in = rng.standard_normal((5, HIDDEN)).astype(np.float32)
    w_out = (rng.standard_normal((HIDDEN, 1)) / HIDDEN).astype(np.float32)
    graph = make.make_graph(
        [
            make.make_node("MatMul", ["x", "w_in"], ["h"]),
            make.make_node("Relu", ["h"], ["r"]),
            make.make_node("MatMul", ["r", "w_out"], ["y"]),
        ],
        "big",
        [make.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 5])],
        [make.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 1])],
        [onnx.numpy_helper.from_array(w_in, "w_in"), onnx.numpy_helper.from_array(w_out, "w_out")],
    )
    model = make.make_model(graph, opset_imports=[make.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("big") / "big.onnx"
    onnx.save(model, path)
    return path


def _upload_request(server: ServerProcess, token: str, model: Path) -> tuple[bytes, bytes]:
    """(headers, body) of the multipart upload ``curl -F file=@big.onnx`` sends."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.onnx"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + model.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/v1/models/big/versions HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()
    return head, body


def _wait_for(found: Callable[[], object], what: str, connection: socket.socket) -> None:
    """Poll ``found()`` tightly; fail if the server answered first or time runs out."""
    deadline = time.monotonic() + WAIT_S
    connection.setblocking(False)
    while not found():
        try:
            early = connection.recv(4096)
        except BlockingIOError:
            early = None
        assert early is None, f"the server answered before {what}: {early!r}"
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(0.0005)


def _open_files_under(pid: int, directory: Path) -> list[str]:
    """Paths the process has open under ``directory`` (unnamed temp files included)."""
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return [t for t in targets if t.startswith(f"{directory}/")]


def _versions_of_big(cluster: Cluster) -> list[tuple[int, str]]:
    return [
        (version, sha256)
        for version, sha256 in cluster.query(
            "SELECT v.version, v.sha256 FROM model_versions v"
            " JOIN registered_models m ON m.id = v.model_id WHERE m.name = 'big'"
        )
    ]


def _stored_but_unrecorded(cluster: Cluster) -> list[Path]:
    """Files in the artifact store that no version row points at (the store's own
    ``.tmp-`` files included); the demo model registered at first start has its row."""
    recorded = {key for (key,) in cluster.query("SELECT storage_key FROM model_versions")}
    files = [p for p in cluster.artifacts.rglob("*") if p.is_file()]
    return [p for p in files if p.relative_to(cluster.artifacts).as_posix() not in recorded]


def _leftovers(cluster: Cluster, server: ServerProcess, system_tmp: Path) -> list[Path]:
    scratch = server.data_dir / "tmp"
    found = list(system_tmp.rglob("*"))
    found += list(scratch.glob("*")) if scratch.exists() else []
    return found + _stored_but_unrecorded(cluster)


async def test_an_upload_cut_by_sigkill_leaves_nothing_and_the_next_one_succeeds(
    cluster: Cluster, big_model: Path
) -> None:
    await cluster.migrate()
    data_dir = cluster.root / "api"
    system_tmp = cluster.root / "system-tmp"
    system_tmp.mkdir()

    async def start(name: str) -> ServerProcess:
        return await cluster.start("api", name, data_dir=data_dir, TMPDIR=str(system_tmp))

    server = await start("api-1")
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        login = await client.post(
            f"{server.url}/api/v1/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
        )
        token = login.json()["access_token"]
        created = await client.post(
            f"{server.url}/api/v1/models", json={"name": "big"}, headers=bearer(token)
        )
        assert created.status_code == 201, created.text

        # 1. Half the body sent: the server holds it in an unnamed spool file.
        head, body = _upload_request(server, token, big_model)
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(head + body[: len(body) // 2])
            await asyncio.to_thread(
                _wait_for,
                lambda: _open_files_under(server.pid, system_tmp),
                "the server spooled the first half",
                connection,
            )
            server.kill()
        assert _versions_of_big(cluster) == []
        assert _leftovers(cluster, server, system_tmp) == []

        # 2. The whole body received, the file in DATA_DIR/tmp and being checked.
        server = await start("api-2")
        scratch = data_dir / "tmp"
        head, body = _upload_request(server, token, big_model)
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(head + body)
            await asyncio.to_thread(
                _wait_for,
                lambda: any(scratch.glob("upload-*")),
                "the upload reached DATA_DIR/tmp",
                connection,
            )
            server.kill()
        assert _versions_of_big(cluster) == []

        # Back up: what the killed process left is swept before anything else runs.
        server = await start("api-3")
        assert _leftovers(cluster, server, system_tmp) == []
        again = await client.post(
            f"{server.url}/api/v1/models/big/versions",
            files={"file": ("big.onnx", big_model.read_bytes())},
            headers=bearer(token),
        )
        assert again.status_code == 201, again.text
        assert again.json()["version"] == 1
    sha256 = hashlib.sha256(big_model.read_bytes()).hexdigest()
    assert _versions_of_big(cluster) == [(1, sha256)]
    stored = [p for p in cluster.artifacts.rglob("*") if p.is_file()]
    assert sum(hashlib.sha256(p.read_bytes()).hexdigest() == sha256 for p in stored) == 1
    assert _leftovers(cluster, server, system_tmp) == []
