"""Against a real ``mlops up`` process: stock Open Inference Protocol clients and
graceful shutdown."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from mlops.serving.dataplane import in_canary
from tests.cli.live_server import LiveServer, running_up
from tests.serving.drain import DrainTraffic, access_log


def _token(server: LiveServer) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": "admin", "password": server.admin_password},
    )
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def live_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="module")
def live(live_dir: Path) -> Iterator[tuple[LiveServer, str]]:
    with running_up(live_dir) as server:
        yield server, _token(server)


def test_health_and_metadata(live: tuple[LiveServer, str]) -> None:
    server, token = live
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("demo", headers=headers)
    assert client.is_model_ready("demo", "1", headers=headers)
    metadata = client.get_model_metadata("demo", headers=headers)
    # The demo is scikit-learn (float64 features); served through onnxruntime.
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 5]}]
    assert [o["name"] for o in metadata["outputs"]] == ["predictions", "probabilities"]
    with pytest.raises(triton.InferenceServerException):
        client.get_model_metadata("demo")  # no credentials


@pytest.mark.parametrize(("binary", "datatype"), [(True, "FP64"), (False, "FP64"), (True, "FP32")])
def test_tritonclient_infer_matches_rest(
    live: tuple[LiveServer, str], binary: bool, datatype: str
) -> None:
    server, token = live
    headers = {"Authorization": f"Bearer {token}"}
    dtype = np.float64 if datatype == "FP64" else np.float32
    rows = np.array([[1, 2, 3, 4, 5], [0, -1, 0.5, 2, -3]], dtype=dtype)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    tensor = triton.InferInput("input", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("predictions", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    # tritonclient adds its own headers to the dict it is given: pass a copy.
    result = client.infer("demo", [tensor], outputs=outputs, headers=dict(headers))
    rest = httpx.post(
        f"{server.url}/api/v1/models/demo/predict",
        json={"data": rows.tolist(), "return_probabilities": True},
        headers=headers,
    ).json()
    assert result.as_numpy("predictions").tolist() == rest["predictions"]
    assert np.allclose(result.as_numpy("probabilities"), rest["probabilities"])
    # Defaults of the stock client: binary in, binary out, every output.
    plain = client.infer("demo", [tensor], headers=dict(headers))
    assert plain.as_numpy("predictions").tolist() == rest["predictions"]
    assert result.get_response()["model_version"] == "1"


def test_v2_errors(live: tuple[LiveServer, str]) -> None:
    server, token = live
    headers = {"Authorization": f"Bearer {token}"}
    wrong_width = httpx.post(
        f"{server.url}/v2/models/demo/infer",
        json={
            "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]
        },
        headers=headers,
    )
    assert wrong_width.status_code == 422
    assert "[rows, 5]" in wrong_width.json()["error"]
    assert wrong_width.headers["X-Error-Code"] == "invalid_input"
    unknown = httpx.post(
        f"{server.url}/v2/models/ghost/infer",
        json={"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [0] * 5}]},
        headers=headers,
    )
    assert unknown.status_code == 404
    bad_type = httpx.post(
        f"{server.url}/v2/models/demo/infer",
        json={
            "inputs": [{"name": "input", "shape": [1, 5], "datatype": "BYTES", "data": ["a"] * 5}]
        },
        headers=headers,
    )
    assert bad_type.status_code == 422
    boolean = httpx.post(
        f"{server.url}/v2/models/demo/infer",
        json={
            "inputs": [
                {"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, True]}
            ]
        },
        headers=headers,
    )
    assert boolean.status_code == 422
    assert "true/false are not numbers" in boolean.json()["error"]
    huge = httpx.post(
        f"{server.url}/v2/models/demo/infer",
        json={
            "inputs": [
                {"name": "input", "shape": [4294967296, 4294967296], "datatype": "FP32", "data": []}
            ]
        },
        headers=headers,
    )
    assert huge.status_code == 413, huge.text


def _tamper(live_dir: Path, sha256: str, impostor: Path) -> None:
    """Replace the stored object whose bytes hash to ``sha256`` (the local file store)."""
    for path in (live_dir / "data" / "artifacts").rglob("*"):
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
            path.write_bytes(impostor.read_bytes())
            return
    raise AssertionError(f"no stored object with sha256 {sha256}")


def test_the_stock_client_can_read_every_error(
    live: tuple[LiveServer, str], live_dir: Path, model_files: dict[str, Path], impostor: Path
) -> None:
    """``str()`` of tritonclient's exception raised TypeError on the platform's error
    object; with the protocol's ``{"error": "<message>"}`` it tells status and message."""
    server, token = live
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{server.url}/api/v1/models", json={"name": "swapped"}, headers=headers)
    assert created.status_code == 201
    uploaded = httpx.post(
        f"{server.url}/api/v1/models/swapped/versions",
        files={"file": ("model.onnx", model_files["onnx"].read_bytes())},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    _tamper(live_dir, uploaded.json()["sha256"], impostor)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    row = np.array([[1, 2, 3, 4, 5]], dtype=np.float64)

    def infer(
        rows: np.ndarray = row,
        *,
        binary: bool = True,
        model: str = "demo",
        version: str = "",
        credentials: dict[str, str] = headers,
    ) -> None:
        tensor = triton.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        client.infer(model, [tensor], model_version=version, headers=dict(credentials))

    # The catalog learns of the new model a moment after the upload answers: wait until
    # the model server knows it (404 until then), whatever the machine's load.
    deadline = time.monotonic() + 30
    while True:
        with pytest.raises(triton.InferenceServerException) as seen:
            infer(model="swapped", version="1")
        if seen.value.status() != "404" or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    cases: list[tuple[Callable[[], object], int, str]] = [
        # The stock client writes NaN into JSON as it is: not valid JSON.
        (lambda: infer(np.full((1, 5), np.nan), binary=False), 400, "not valid JSON"),
        (lambda: infer(credentials={}), 401, "missing Authorization header"),
        (lambda: client.get_model_metadata("demo"), 401, "missing Authorization header"),
        (lambda: infer(model="ghost"), 404, "model 'ghost' does not exist"),
        (lambda: infer(np.zeros((10_001, 5))), 413, "10001 rows is more than the limit"),
        (lambda: infer(np.zeros((1, 4))), 422, "expected a tensor of shape [rows, 5]"),
        (
            lambda: infer(model="swapped", version="1"),
            503,
            "does not match the sha256 recorded at upload",
        ),
    ]
    for call, status, says in cases:
        with pytest.raises(triton.InferenceServerException) as caught:
            call()
        text = str(caught.value)
        assert text.startswith(f"[{status}] ") and says in text, (status, text)
        assert caught.value.status() == str(status)


def _release_with_canary(
    server: LiveServer, headers: dict[str, str], name: str, files: list[Path]
) -> None:
    """``name`` with versions 1 (production) and 2 (a canary for half the traffic) and a
    tight latency guard: 0.5 ms at p95, per row of the runtime's batches."""
    created = httpx.post(f"{server.url}/api/v1/models", json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    for path in files:
        uploaded = httpx.post(
            f"{server.url}/api/v1/models/{name}/versions",
            files={"file": (path.name, path.read_bytes())},
            headers=headers,
            timeout=60,
        )
        assert uploaded.status_code == 201, uploaded.text
    aliased = httpx.put(
        f"{server.url}/api/v1/models/{name}/aliases/production",
        json={"version": 1},
        headers=headers,
    )
    assert aliased.status_code == 200, aliased.text
    guard = {"max_error_rate": 0.01, "max_p95_ms": 0.5, "window_s": 600, "min_requests": 20}
    deployed = httpx.put(
        f"{server.url}/api/v1/models/{name}/deployment",
        json={"canary": {"version": 2, "percent": 50}, "guard": guard},
        headers=headers,
    )
    assert deployed.status_code == 200, deployed.text


def _viewer(server: LiveServer, admin: dict[str, str], username: str) -> dict[str, str]:
    password = f"{username}-Passphrase-42"
    created = httpx.post(
        f"{server.url}/api/v1/users",
        json={"username": username, "password": password, "role": "viewer"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    login = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": username, "password": password}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _canary_key() -> str:
    """A routing key that the 50% canary takes (the caller chooses: that was the lever)."""
    return next(key for key in (f"key-{i}" for i in range(1000)) if in_canary(50, key))


def _deployment(server: LiveServer, headers: dict[str, str], name: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(
        f"{server.url}/api/v1/models/{name}/deployment", headers=headers
    ).json()
    return answer


def test_big_requests_from_one_viewer_do_not_evict_a_healthy_canary(
    live: tuple[LiveServer, str], model_files: dict[str, Path], same_model: Path
) -> None:
    """The issue's attack: 160 requests of 10,000 rows, all sent to the canary. Timed per
    request, they made a healthy canary look slow; per row, they are fast."""
    server, token = live
    admin = {"Authorization": f"Bearer {token}"}
    _release_with_canary(server, admin, "healthy", [model_files["onnx"], same_model])
    eve = {**_viewer(server, admin, "eve"), "X-Routing-Key": _canary_key()}
    rows = np.random.default_rng(1).standard_normal((10_000, 5)).round(3).tolist()
    body = json.dumps({"data": rows}).encode()
    with httpx.Client(timeout=60) as client:
        for _ in range(160):
            answer = client.post(
                f"{server.url}/api/v1/models/healthy/predict",
                content=body,
                headers={**eve, "Content-Type": "application/json"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Model-Version"] == "2"
    deployment = _deployment(server, admin, "healthy")
    assert deployment["policy"]["canary"] == {"version": 2, "percent": 50.0}
    assert "canary_rollback" not in deployment["status"]


def test_a_genuinely_slow_canary_is_still_evicted(
    live: tuple[LiveServer, str], model_files: dict[str, Path], slow_model: Path
) -> None:
    server, token = live
    admin = {"Authorization": f"Bearer {token}"}
    _release_with_canary(server, admin, "slowpoke", [model_files["onnx"], slow_model])
    mallory = {**_viewer(server, admin, "mallory"), "X-Routing-Key": _canary_key()}
    served = []
    with httpx.Client(timeout=60) as client:
        for _ in range(200):
            answer = client.post(
                f"{server.url}/api/v1/models/slowpoke/predict",
                json={"data": [[0.5, -1, 2, 0, 1]]},
                headers=mallory,
            )
            assert answer.status_code == 200, answer.text
            served.append(answer.headers["X-Model-Version"])
            if served[-1] == "1":
                break  # the canary is out: its key meets the primary now
    assert served[-1] == "1", "the slow canary kept its traffic"
    rollback = _deployment(server, admin, "slowpoke")["status"]["canary_rollback"]
    assert rollback["version"] == 2
    assert rollback["reason"].startswith("p95 latency per row")


def test_sigterm_loses_no_request_in_flight(tmp_path: Path) -> None:
    """Predictions flow from before SIGTERM until the listener closes; one straddles the
    close. Each request the server took gets a full 200 answer (drain.py)."""
    delay = 2.0
    env = {"MLOPS_SHUTDOWN_DELAY_SECONDS": str(delay)}
    with running_up(tmp_path, timeout=240, env=env) as server:
        headers = {"Authorization": f"Bearer {_token(server)}"}
        port = int(server.url.rsplit(":", 1)[1])
        traffic = DrainTraffic(f"{server.url}/api/v1/models/predict", headers, rows=1000)
        traffic.start_senders(4)
        traffic.wait_answers(8)  # under way before the signal

        sigterm_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        with httpx.Client(timeout=10) as probe:
            deadline = time.monotonic() + 10
            while (ready := probe.get(f"{server.url}/ready")).status_code != 503:
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.01)
            # Draining: out of the load balancer's rotation, still alive and answering.
            assert probe.get(f"{server.url}/v2/health/ready").status_code == 503
            assert probe.get(f"{server.url}/health").status_code == 200
        traffic.start_straddling_request()
        traffic.watch_listener(port)
        assert traffic.closed.wait(60), "the listener never closed"
        traffic.join()
        # uvicorn re-raises SIGTERM once it has shut down cleanly, as a supervisor expects.
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)

    seen = access_log(tmp_path / "up.log", "/api/v1/models/predict")
    answered = [s for s in traffic.sent if s.status is not None]
    unanswered = [s for s in traffic.sent if s.status is None]
    bad = [s for s in answered if s.status != 200 or s.rows != traffic.rows]
    assert not bad, "\n".join(map(str, bad))
    # The server logged each answer it gave (its last lines too, before it exited).
    assert all(seen.get(s.request_id) == 200 for s in answered), "answers missing from the log"
    # No answer only for requests the server never read, and only once it could close.
    lost = [s for s in unanswered if s.request_id in seen or s.finished < sigterm_at + delay]
    assert not lost, "\n".join(map(str, lost))
    # The window was covered: answers through the delay, and one in flight across the close.
    assert any(s.finished > sigterm_at + delay / 2 for s in answered)
    straddling = next(s for s in traffic.sent if s.request_id == "drain-straddling")
    assert straddling.status == 200 and straddling.finished > traffic.closed_at, straddling
    # Every sender ran until a new connection was refused.
    refused = {s.request_id.rsplit("-", 1)[0] for s in unanswered if s.error == "ConnectError"}
    assert refused == {f"drain-{n}" for n in range(4)}, refused
