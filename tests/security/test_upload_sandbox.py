"""Uploads are validated in a separate process with memory and time limits and no
network: a file that exhausts memory, hangs, or crashes its validator is a 422 naming
the cause, leaves nothing behind, and the API keeps answering meanwhile.

The crafted files are real ONNX models that onnxruntime runs as asked; only the crash
points the validator at a module that kills its own process (through the sandbox's
entry attribute, in this test process: the product has no test switch).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnx.helper as make
import onnx.numpy_helper
import pytest

from mlops.config import load_settings
from mlops.errors import BadRequest, ConfigError, Invalid
from mlops.registry import sandbox
from mlops.registry.sandbox import ChildResult, SandboxLimits, UploadSandbox, interpret
from tests.conftest import SECRET_KEY, Platform, bearer, running_platform
from tests.registry.helpers import create_model, upload
from tests.serving.conftest import release

ENTRIES = Path(__file__).parent / "sandbox_entries"
PRODUCT_ENTRY = sandbox.CHILD_ENTRY
ROW = [[1.0, 2.0, 3.0, 4.0, 5.0]]
FLOAT = onnx.TensorProto.FLOAT
INT64 = onnx.TensorProto.INT64


def _save(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> Path:
    """A 5-feature regressor ``y = x @ w + <extra>``: ``nodes`` compute ``extra`` (a scalar)."""
    w = onnx.numpy_helper.from_array(np.ones((5, 1), dtype=np.float32), "w")
    graph = make.make_graph(
        [
            make.make_node("MatMul", ["x", "w"], ["linear"]),
            *nodes,
            make.make_node("Add", ["linear", "extra"], ["y"]),
        ],
        path.stem,
        [make.make_tensor_value_info("x", FLOAT, [None, 5])],
        [make.make_tensor_value_info("y", FLOAT, [None, 1])],
        initializer=[w, *inits],
    )
    model = make.make_model(graph, opset_imports=[make.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _const(name: str, value: Any, dtype: Any) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.array(value, dtype=dtype), name)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("crafted")
    files: dict[str, Path] = {}
    files["plain"] = _save(
        directory / "plain.onnx",
        [make.make_node("Identity", ["zero"], ["extra"])],
        [_const("zero", 0.0, np.float32)],
    )
    # rows x 10^9 float32 zeros (16 GB for the 4-row sample) from the input's shape, so
    # nothing can fold it away before it runs; the sum is multiplied by 0.
    files["memory"] = _save(
        directory / "memory.onnx",
        [
            make.make_node("Shape", ["x"], ["shape"]),
            make.make_node("Slice", ["shape", "start", "end"], ["rows"]),
            make.make_node("Mul", ["rows", "billion"], ["count"]),
            make.make_node(
                "ConstantOfShape",
                ["count"],
                ["huge"],
                value=onnx.numpy_helper.from_array(np.zeros(1, dtype=np.float32)),
            ),
            make.make_node("ReduceSum", ["huge"], ["total"], keepdims=0),
            make.make_node("Mul", ["total", "zero"], ["extra"]),
        ],
        [
            _const("start", [0], np.int64),
            _const("end", [1], np.int64),
            _const("billion", [10**9], np.int64),
            _const("zero", 0.0, np.float32),
        ],
    )
    # A Loop of 10^15 iterations that adds 1 each time: it does not end.
    body = make.make_graph(
        [
            make.make_node("Identity", ["cond_in"], ["cond_out"]),
            make.make_node("Constant", [], ["one"], value=make.make_tensor("one", FLOAT, [], [1])),
            make.make_node("Add", ["v_in", "one"], ["v_out"]),
        ],
        "body",
        [
            make.make_tensor_value_info("i", INT64, []),
            make.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
            make.make_tensor_value_info("v_in", FLOAT, []),
        ],
        [
            make.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
            make.make_tensor_value_info("v_out", FLOAT, []),
        ],
    )
    files["hang"] = _save(
        directory / "hang.onnx",
        [
            make.make_node("Loop", ["trips", "true", "start_value"], ["counted"], body=body),
            make.make_node("Mul", ["counted", "zero"], ["extra"]),
        ],
        [
            _const("trips", 10**15, np.int64),
            _const("true", True, np.bool_),
            _const("start_value", 0.0, np.float32),
            _const("zero", 0.0, np.float32),
        ],
    )
    return files


def _sandbox_children(parent: int | None = None) -> list[int]:
    """The children of ``parent`` (this process) running the validator (or a test's
    stand-in for it), zombies left out."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and b"sandbox" in cmdline:
            found.append(int(entry.name))
    return found


async def _eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(6000):  # at most a minute
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _round(platform: Platform, token: str) -> list[int]:
    """A health check, a prediction and a models list, at once."""
    answers = await asyncio.gather(
        platform.client.get("/health"),
        platform.client.post(
            "/api/v1/models/live/predict", json={"data": ROW}, headers=bearer(token)
        ),
        platform.client.get("/api/v1/models", headers=bearer(token)),
    )
    return [answer.status_code for answer in answers]


async def _misbehave(
    platform: Platform,
    token: str,
    path: Path,
    started: Callable[[], bool],
    go: Callable[[], None] | None = None,
) -> tuple[httpx.Response, int]:
    """Upload ``path`` to ``target`` and, once the validator has ``started``, keep
    sending other requests until the upload answers; every one must be a 200."""
    task = asyncio.create_task(upload(platform, token, "target", path))
    await _eventually(lambda: started() or task.done(), "the validator started")
    assert not task.done(), "the upload answered before its validator was seen running"
    rounds = 0
    while not task.done():
        assert await _round(platform, token) == [200, 200, 200]
        rounds += 1
        if go is not None:
            go()  # the validator was alive during that round: let it misbehave now
        await asyncio.sleep(0.02)
    assert await _round(platform, token) == [200, 200, 200]
    return task.result(), rounds


async def _prepared(platform: Platform, crafted: dict[str, Path]) -> tuple[str, list[str]]:
    """A token, a model ``live`` serving predictions, an empty model ``target``, and
    the stored objects before the misbehaving upload."""
    token = await platform.login()
    await release(platform, token, "live", [crafted["plain"]])
    assert (await create_model(platform, token, "target")).status_code == 201
    assert await _round(platform, token) == [200, 200, 200]
    return token, await platform.ctx.store.list_keys("")


async def _nothing_left(platform: Platform, token: str, keys_before: list[str]) -> None:
    listed = await platform.client.get("/api/v1/models/target/versions", headers=bearer(token))
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert await platform.ctx.store.list_keys("") == keys_before
    tmp = platform.settings.data_dir / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    assert _sandbox_children() == []


def _gated(monkeypatch: pytest.MonkeyPatch, gate: Path, then: str) -> None:
    gate.mkdir()
    monkeypatch.setattr(sandbox, "CHILD_ENTRY", (str(ENTRIES / "gated.py"), str(gate), then))


async def test_a_file_that_exhausts_memory_is_a_422_naming_the_limit(
    settings_factory: Any,
    crafted: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_platform(settings_factory()) as platform:
        token, keys = await _prepared(platform, crafted)
        _gated(monkeypatch, tmp_path / "gate", "validate")
        response, rounds = await _misbehave(
            platform,
            token,
            crafted["memory"],
            started=(tmp_path / "gate" / "started").exists,
            go=(tmp_path / "gate" / "go").touch,
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_out_of_memory"
        assert error["message"].startswith(
            "memory.onnx: model validation ran out of memory (limit 2048 MiB, "
            "MLOPS_UPLOAD_VALIDATION_MEMORY_MB)"
        )
        assert rounds >= 1
        await _nothing_left(platform, token, keys)


async def test_a_file_that_hangs_is_stopped_at_the_time_limit(
    settings_factory: Any, crafted: dict[str, Path]
) -> None:
    # Long enough for the child to start and load the model even on a busy machine (a
    # valid ONNX upload took under 5 s at a load average of 9 on 2 cores), so the Loop
    # is what runs out of time.
    settings = settings_factory(upload_validation_timeout_seconds=8)
    async with running_platform(settings) as platform:
        token, keys = await _prepared(platform, crafted)
        response, rounds = await _misbehave(
            platform, token, crafted["hang"], started=lambda: bool(_sandbox_children())
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_timeout"
        assert error["message"] == (
            "hang.onnx: model validation took longer than 8 s "
            "(MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS) and was stopped. Nothing was stored."
        )
        assert rounds >= 1
        await _nothing_left(platform, token, keys)


async def test_a_validator_that_crashes_is_a_422_naming_the_signal(
    settings_factory: Any,
    crafted: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_platform(settings_factory()) as platform:
        token, keys = await _prepared(platform, crafted)
        _gated(monkeypatch, tmp_path / "gate", "crash")
        response, rounds = await _misbehave(
            platform,
            token,
            crafted["plain"],
            started=(tmp_path / "gate" / "started").exists,
            go=(tmp_path / "gate" / "go").touch,
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_crashed"
        assert error["message"].startswith("plain.onnx: model validation crashed (signal SIGSEGV)")
        assert rounds >= 1
        await _nothing_left(platform, token, keys)
        # The same file, validated by the real validator, is accepted.
        monkeypatch.setattr(sandbox, "CHILD_ENTRY", PRODUCT_ENTRY)
        again = await upload(platform, token, "target", crafted["plain"])
        assert again.status_code == 201, again.text


async def test_the_validator_cannot_open_a_connection(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x08")
    entry = (str(ENTRIES / "connecting.py"), str(port))
    validator = UploadSandbox(SandboxLimits(memory_mb=2048, timeout_seconds=60), entry=entry)
    with listener:
        with pytest.raises(Invalid) as refused:
            await validator.inspect(model, "m.onnx")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    assert refused.value.code == "validation_forbidden"
    assert "network use (socket.__new__) is not allowed" in refused.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


_API_PROCESS = """
import asyncio, sys
from pathlib import Path
from mlops.registry.sandbox import SandboxLimits, UploadSandbox
asyncio.run(UploadSandbox(SandboxLimits(2048, 3600)).inspect(Path(sys.argv[1]), "hang.onnx"))
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_the_validator_dies_with_the_api_process(
    crafted: dict[str, Path], tmp_path: Path
) -> None:
    """An API process SIGKILLed mid-validation leaves no validator running (its time
    limit died with it), even one that would never end."""
    hang = tmp_path / "hang.onnx"
    shutil.copy(crafted["hang"], hang)
    api = await asyncio.create_subprocess_exec(sys.executable, "-c", _API_PROCESS, str(hang))
    try:
        await _eventually(lambda: bool(_sandbox_children(api.pid)), "the validator started")
        (validator,) = _sandbox_children(api.pid)
    finally:
        api.kill()
        await api.wait()
    try:
        await _eventually(lambda: not _running(validator), "the orphaned validator ended")
    finally:
        if _running(validator):  # the test failed: leave no process behind
            os.kill(validator, signal.SIGKILL)


_CAN_UNSHARE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if any(libc.unshare(f) == 0 for f in (0x50000000, 0x40000000)) else 1)
"""


async def test_the_validator_has_a_network_namespace_of_its_own_where_possible(
    tmp_path: Path,
) -> None:
    """Where this kernel lets a process unshare its network (probed here apart from the
    product's code), the validator must be in a namespace other than the API's."""
    probe = await asyncio.create_subprocess_exec(sys.executable, "-I", "-c", _CAN_UNSHARE)
    if await probe.wait() != 0:
        pytest.skip("this kernel refuses unshare(CLONE_NEWNET); the audit hook alone stands")
    seen = tmp_path / "ns.json"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x08")
    entry = (str(ENTRIES / "netns.py"), str(seen))
    validator = UploadSandbox(SandboxLimits(memory_mb=2048, timeout_seconds=60), entry=entry)
    with pytest.raises(Invalid, match="exit status 0, without an answer"):
        await validator.inspect(model, "m.onnx")
    found = json.loads(seen.read_text())
    assert found["isolated"] is True
    assert found["namespace"] != os.readlink("/proc/self/ns/net")


async def test_the_validator_gets_no_secrets_or_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = {
        "MLOPS_SECRET_KEY": SECRET_KEY,
        "MLOPS_DATABASE_URL": "postgresql://u:p@db/mlops",
        "MLOPS_REDIS_URL": "redis://:p@redis:6379/0",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "HTTPS_PROXY": "http://proxy:3128",
        "PYTHONPATH": str(tmp_path),
    }
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    seen = tmp_path / "env.json"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x08")
    entry = (str(ENTRIES / "dump_env.py"), str(seen))
    validator = UploadSandbox(SandboxLimits(memory_mb=2048, timeout_seconds=60), entry=entry)
    with pytest.raises(Invalid, match="exit status 0, without an answer"):
        await validator.inspect(model, "m.onnx")
    env = json.loads(seen.read_text())
    assert not set(given) & set(env)
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["TMPDIR"] == env["HOME"]
    assert Path(env["TMPDIR"]).parent == tmp_path
    assert not Path(env["TMPDIR"]).exists()  # removed after the run


def test_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = SandboxLimits.of(load_settings(secret_key=SECRET_KEY))
    assert defaults == SandboxLimits(memory_mb=2048, timeout_seconds=60.0)
    monkeypatch.setenv("MLOPS_UPLOAD_VALIDATION_MEMORY_MB", "4096")
    monkeypatch.setenv("MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS", "2.5")
    limits = SandboxLimits.of(load_settings(secret_key=SECRET_KEY))
    assert limits == SandboxLimits(memory_mb=4096, timeout_seconds=2.5)
    assert limits.memory_bytes == 4096 * 1024 * 1024


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("MLOPS_UPLOAD_VALIDATION_MEMORY_MB", "100"),
        ("MLOPS_UPLOAD_VALIDATION_MEMORY_MB", "2GB"),
        ("MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS", "0"),
        ("MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS", "forever"),
    ],
)
def test_bad_limits_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=env):
        load_settings(secret_key=SECRET_KEY)


LIMITS = SandboxLimits(memory_mb=1024, timeout_seconds=30)


def _answer(envelope: dict[str, Any]) -> ChildResult:
    return ChildResult(returncode=0, answer=json.dumps(envelope).encode(), stderr=b"")


def test_an_accepted_file_comes_back_as_its_model_info() -> None:
    info = {
        "format": "onnx",
        "signature": {
            "n_features": 5,
            "feature_names": None,
            "input_dtype": "float32",
            "output_kind": "regression",
            "classes": None,
            "has_probabilities": False,
        },
        "details": {"serving_runtime": "onnxruntime"},
    }
    got = interpret(_answer({"ok": info, "vm_peak_kib": 1}), LIMITS, "m.onnx")
    assert got.format == "onnx"
    assert got.signature.n_features == 5
    assert got.details == {"serving_runtime": "onnxruntime"}


def test_a_refusal_comes_back_as_the_same_error() -> None:
    refused = {"type": "BadRequest", "code": "unsafe_format", "message": "m.pkl is a pickle"}
    with pytest.raises(BadRequest) as error:
        interpret(_answer({"refused": refused}), LIMITS, "m.pkl")
    assert (error.value.status_code, error.value.code, error.value.message) == (
        400,
        "unsafe_format",
        "m.pkl is a pickle",
    )
    broken = {"type": "Invalid", "code": "model_invalid", "message": "m.onnx: broken"}
    with pytest.raises(Invalid) as invalid:
        interpret(_answer({"refused": broken}), LIMITS, "m.onnx")
    assert (invalid.value.status_code, invalid.value.code) == (422, "model_invalid")


@pytest.mark.parametrize(
    ("result", "code", "says"),
    [
        (_answer({"memory": "MemoryError"}), "validation_out_of_memory", "(limit 1024 MiB"),
        (
            ChildResult(-signal.SIGABRT, b"", b"terminate called ... std::bad_alloc\n"),
            "validation_out_of_memory",
            "ran out of memory (limit 1024 MiB",
        ),
        (
            ChildResult(1, b"", b"Traceback ...\nMemoryError\n"),
            "validation_out_of_memory",
            "ran out of memory",
        ),
        (ChildResult(-signal.SIGSEGV, b"", b""), "validation_crashed", "crashed (signal SIGSEGV)"),
        (ChildResult(-signal.SIGKILL, b"", b""), "validation_crashed", "out-of-memory killer"),
        (ChildResult(3, b"", b"boom"), "validation_crashed", "(exit status 3, without an answer)"),
        (ChildResult(0, b"{not json", b""), "validation_crashed", "exit status 0"),
        (
            _answer({"forbidden": "network use (socket.connect) is not allowed"}),
            "validation_forbidden",
            "network use (socket.connect)",
        ),
    ],
)
def test_what_went_wrong_is_a_422_naming_it(result: ChildResult, code: str, says: str) -> None:
    with pytest.raises(Invalid) as error:
        interpret(result, LIMITS, "m.onnx")
    assert error.value.status_code == 422
    assert error.value.code == code
    assert error.value.message.startswith("m.onnx: model validation ")
    assert says in error.value.message


def test_an_unexpected_failure_stays_a_server_error() -> None:
    with pytest.raises(RuntimeError, match="upload validation failed: KeyError: 'x'"):
        interpret(_answer({"failed": "KeyError: 'x'"}), LIMITS, "m.onnx")


def test_the_timeout_message_names_the_limit() -> None:
    error = sandbox.validation_timeout("m.onnx", SandboxLimits(2048, 1.5))
    assert (error.status_code, error.code) == (422, "validation_timeout")
    assert "took longer than 1.5 s (MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS)" in error.message


async def test_the_platforms_own_demo_file_is_judged_as_the_sandbox_would(
    tmp_path: Path,
) -> None:
    # The demo model, trained at first start, skips the sandbox (nobody chose its bytes);
    # the in-process answer must be the one a sandboxed upload of it would get.
    from mlops.modelformats import build_demo_model
    from mlops.registry.sandbox import OwnFileInspector

    path = build_demo_model(tmp_path)
    in_process = await OwnFileInspector().inspect(path, path.name)
    sandboxed = await UploadSandbox(SandboxLimits(memory_mb=2048, timeout_seconds=120)).inspect(
        path, path.name
    )
    assert in_process.format == "skops"
    assert in_process.details["serving_runtime"] == "onnxruntime"
    assert in_process == sandboxed
