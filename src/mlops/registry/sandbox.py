"""Validating an upload in a separate process, so a hostile file cannot take the API down.

Loading a model runs compiled code (onnx, onnxruntime, scikit-learn, XGBoost,
LightGBM) on bytes anyone with the editor role chose. ``UploadSandbox`` runs that
work (``sandbox_child``) in a fresh interpreter, spawned rather than forked from the
server's threads, with:

- an address-space limit (``RLIMIT_AS``, ``MLOPS_UPLOAD_VALIDATION_MEMORY_MB``);
- a wall-clock limit (``MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS``), after which its
  whole process group is killed; it is killed too if the API process dies;
- no network: a network namespace of its own where the kernel allows one (unshare),
  and always an audit hook, set before any model library loads, that refuses sockets
  and new processes (native code could bypass the hook alone; see
  docs/architecture/0012-upload-sandbox.md);
- an environment of a few harmless variables: no secret key, database or Redis URL,
  S3 credentials or proxies; one thread per numeric library, so the address space a
  validation needs does not grow with the machine's core count;
- a private working and temporary directory beside the upload, removed afterwards.

It is given the file's path and name and answers with the ``ModelInfo``. A refusal
comes back as the same ``PlatformError`` the file earned before; running out of
memory or time, or crashing, is a 422 naming the cause.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import errors
from mlops.config import Settings
from mlops.errors import Invalid, PlatformError
from mlops.modelformats import ModelInfo

from .sandbox_child import out_of_memory

log = logging.getLogger("mlops.registry.sandbox")

# What the interpreter runs after its flags. A module attribute (not a setting) so a
# test can point it at a misbehaving entry point.
CHILD_ENTRY: tuple[str, ...] = ("-m", "mlops.registry.sandbox_child")
# -I: no current directory, PYTHON* variables or user site on sys.path; -B: no .pyc writes.
PYTHON_FLAGS = ("-I", "-B")
MAX_ANSWER_BYTES = 8 << 20
STDERR_TAIL_BYTES = 64 << 10
_PASSED_ENV = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "TZ")
_FIXED_ENV = {
    # One thread per library: fewer thread stacks and malloc arenas to reserve.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "PYTHONUNBUFFERED": "1",
    # No telemetry from onnxruntime (see mlops/__init__.py), whatever the parent has.
    "ORT_DISABLE_TELEMETRY": "1",
}
# The refusals a validation raises, re-raised as the same class in the API.
_REFUSALS: dict[str, type[PlatformError]] = {
    cls.__name__: cls for cls in (errors.BadRequest, errors.Invalid, errors.PayloadTooLarge)
}


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    memory_mb: int
    timeout_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> SandboxLimits:
        return cls(
            memory_mb=settings.upload_validation_memory_mb,
            timeout_seconds=settings.upload_validation_timeout_seconds,
        )

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChildResult:
    """What came back from one child: its exit status, answer and the end of stderr."""

    returncode: int
    answer: bytes
    stderr: bytes


class UploadSandbox:
    """Validates uploads in child processes under ``limits``; ``entry`` is what the
    interpreter runs (``-m`` and the child module)."""

    def __init__(
        self,
        limits: SandboxLimits,
        *,
        entry: Sequence[str] = CHILD_ENTRY,
        python: str = sys.executable,
    ) -> None:
        self.limits = limits
        self.entry = tuple(entry)
        self.python = python

    @classmethod
    def of(cls, settings: Settings) -> UploadSandbox:
        # CHILD_ENTRY is read now, not when this module was imported.
        return cls(SandboxLimits.of(settings), entry=CHILD_ENTRY)

    async def inspect(self, path: Path, filename: str) -> ModelInfo:
        """The file's ``ModelInfo``, or the ``PlatformError`` that refuses it."""
        workdir = Path(tempfile.mkdtemp(prefix=".sandbox-", dir=path.parent))
        try:
            result = await self._run(path.resolve(), filename, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return interpret(result, self.limits, filename)

    async def _run(self, path: Path, filename: str, workdir: Path) -> ChildResult:
        limit = self.limits.memory_bytes
        request = {
            "path": str(path),
            "filename": filename,
            "memory_bytes": limit,
            "parent_pid": os.getpid(),
        }
        process = await asyncio.create_subprocess_exec(
            self.python,
            *PYTHON_FLAGS,
            *self.entry,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env=child_environment(os.environ, workdir),
            start_new_session=True,  # its own process group, killed as a whole
            close_fds=True,
        )
        try:
            return await asyncio.wait_for(
                _exchange(process, json.dumps(request).encode()), self.limits.timeout_seconds
            )
        except TimeoutError:
            log.warning(
                "upload validation timed out; killed",
                extra={"upload": filename, "timeout_seconds": self.limits.timeout_seconds},
            )
            raise validation_timeout(filename, self.limits) from None
        finally:
            if process.returncode is None:  # timed out, or the request was cancelled
                _kill_group(process.pid)
                await process.wait()


def child_environment(parent: Mapping[str, str], workdir: Path) -> dict[str, str]:
    """Least privilege: a few harmless variables, never the platform's secrets, database
    or Redis URLs, cloud credentials or proxies (which would also route traffic out)."""
    env = {name: parent[name] for name in _PASSED_ENV if name in parent}
    env.update(_FIXED_ENV, HOME=str(workdir), TMPDIR=str(workdir))
    return env


async def _exchange(process: asyncio.subprocess.Process, request: bytes) -> ChildResult:
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    try:
        process.stdin.write(request)
        await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it died before reading: its exit status says why
    answer, stderr = await asyncio.gather(
        _read_head(process.stdout, MAX_ANSWER_BYTES), _read_tail(process.stderr, STDERR_TAIL_BYTES)
    )
    returncode = await process.wait()
    return ChildResult(returncode=returncode, answer=answer, stderr=stderr)


async def _read_head(stream: asyncio.StreamReader, limit: int) -> bytes:
    """The first ``limit`` bytes (and one more, to tell an oversized answer); the rest
    is read and dropped, so the child never blocks on a full pipe."""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        if len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
    return bytes(kept)


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        kept += chunk
        del kept[:-limit]
    return bytes(kept)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def interpret(result: ChildResult, limits: SandboxLimits, filename: str) -> ModelInfo:
    """The child's answer as a ``ModelInfo``, or the error that names why there is none."""
    envelope = _envelope(result.answer) if result.returncode == 0 else None
    if envelope is None:
        stderr = result.stderr.decode("utf-8", "replace")
        log.warning(
            "upload validation ended without an answer",
            extra={"upload": filename, "returncode": result.returncode, "stderr": stderr[-4000:]},
        )
        if out_of_memory(RuntimeError(stderr)):
            raise validation_out_of_memory(filename, limits)
        raise validation_crashed(filename, result.returncode)
    log.debug(
        "upload validated in a sandbox",
        extra={
            "upload": filename,
            "vm_peak_kib": envelope.get("vm_peak_kib"),
            "own_network_namespace": envelope.get("own_network_namespace"),
        },
    )
    if "ok" in envelope:
        return ModelInfo.model_validate(envelope["ok"])
    if "refused" in envelope:
        refusal = envelope["refused"]
        cls = _REFUSALS.get(str(refusal.get("type")), Invalid)
        raise cls(str(refusal["message"]), code=str(refusal["code"]))
    if "memory" in envelope:
        log.warning(
            "upload validation ran out of memory",
            extra={"upload": filename, "detail": envelope["memory"]},
        )
        raise validation_out_of_memory(filename, limits)
    if "forbidden" in envelope:
        log.warning(
            "upload validation tried a forbidden action",
            extra={"upload": filename, "detail": envelope["forbidden"]},
        )
        raise validation_forbidden(filename, str(envelope["forbidden"]))
    # A bug rather than the file's fault: a 500, as when validation ran in the API.
    raise RuntimeError(f"upload validation failed: {envelope.get('failed', envelope)}")


def _envelope(answer: bytes) -> dict[str, Any] | None:
    if len(answer) > MAX_ANSWER_BYTES:
        return None
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def validation_out_of_memory(filename: str, limits: SandboxLimits) -> Invalid:
    return Invalid(
        f"{filename}: model validation ran out of memory (limit {limits.memory_mb} MiB, "
        "MLOPS_UPLOAD_VALIDATION_MEMORY_MB): loading the model and predicting on a sample "
        "needs more than that. Nothing was stored.",
        code="validation_out_of_memory",
    )


def validation_timeout(filename: str, limits: SandboxLimits) -> Invalid:
    return Invalid(
        f"{filename}: model validation took longer than {limits.timeout_seconds:g} s "
        "(MLOPS_UPLOAD_VALIDATION_TIMEOUT_SECONDS) and was stopped. Nothing was stored.",
        code="validation_timeout",
    )


def validation_forbidden(filename: str, detail: str) -> Invalid:
    return Invalid(
        f"{filename}: model validation was stopped: {detail}. Model files may not use the "
        "network or start programs. Nothing was stored.",
        code="validation_forbidden",
    )


def validation_crashed(filename: str, returncode: int) -> Invalid:
    if returncode == -signal.SIGKILL:
        # Not ours (a timeout is reported as such): the kernel's OOM killer, most likely.
        cause = "signal SIGKILL, most likely the system's out-of-memory killer"
    elif returncode < 0:
        cause = f"signal {_signal_name(-returncode)}"
    else:
        cause = f"exit status {returncode}, without an answer"
    return Invalid(
        f"{filename}: model validation crashed ({cause}): the file trips a fault in its "
        "model library. Nothing was stored.",
        code="validation_crashed",
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class OwnFileInspector:
    """Validation in this process, for a file the platform built itself (the demo model,
    trained at first start): nobody chose its bytes, so a fresh interpreter importing
    scikit-learn would only make a newcomer's first ``mlops up`` seconds slower.
    Never for a file that came over the network."""

    async def inspect(self, path: Path, filename: str) -> ModelInfo:
        from .sandbox_child import inspect_and_plan

        answer = await asyncio.to_thread(inspect_and_plan, path, filename)
        return ModelInfo.model_validate(answer)
