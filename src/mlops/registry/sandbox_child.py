"""The upload validator's own process: load an uploaded model file, predict on a
sample, convert it to ONNX and compare, under limits, and report what was found.

Run by ``sandbox.UploadSandbox`` as ``python -I -B -m mlops.registry.sandbox_child``.
It reads one JSON request on stdin (``path``, ``filename``, ``memory_bytes``,
``parent_pid``) and writes one JSON envelope to the stdout it was started with:

- ``{"ok": <ModelInfo>}``: accepted, with the runtime that will serve it;
- ``{"refused": {"type", "code", "message"}}``: a ``PlatformError`` the API re-raises
  unchanged (the same status, code and message as validating in the API did);
- ``{"memory": <detail>}``: the memory limit was hit (``MemoryError``, or a library's
  allocation failure);
- ``{"forbidden": <detail>}``: the audit hook refused a socket or a new process;
- ``{"failed": <detail>}``: anything else (a bug: the API answers 500, as before).

Before any model library is imported, ``confine`` moves the process into a network
namespace of its own where the kernel allows it, caps the address space
(``RLIMIT_AS``), turns off core dumps, and installs an audit hook that refuses
sockets and new processes. Whatever a library prints goes to stderr, so nothing it
writes can be mistaken for the answer.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

MAX_REQUEST_BYTES = 1 << 16
# unshare(2) flags: a user namespace lets an unprivileged process make a network one.
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
# Audit events (docs.python.org/3/library/audit_events.html) refused in the child.
NETWORK_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyaddr",
        "socket.gethostbyname",
        "socket.getnameinfo",
        "socket.sendmsg",
        "socket.sendto",
    }
)
PROCESS_EVENTS = frozenset(
    {
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "pty.spawn",
        "subprocess.Popen",
    }
)
# How libraries word a failed allocation once RLIMIT_AS is reached: onnxruntime
# ("Failed to allocate memory for requested buffer"), C++ (std::bad_alloc), C (ENOMEM).
_ALLOCATION_FAILED = re.compile(
    r"bad_alloc|failed to allocate|cannot allocate memory|out of memory|MemoryError",
    re.IGNORECASE,
)

Inspect = Callable[[Path, str], dict[str, Any]]


class SandboxRefusal(PermissionError):
    """Raised by the audit hook: the validator may not use the network or start processes."""


def _refuse(event: str, _args: tuple[Any, ...]) -> None:
    if event in NETWORK_EVENTS:
        raise SandboxRefusal(f"network use ({event}) is not allowed while validating an upload")
    if event in PROCESS_EVENTS:
        raise SandboxRefusal(f"starting a process ({event}) is not allowed while validating")


def leave_network() -> bool:
    """Move into a network namespace of its own (no interface but a down loopback), so
    not even native code can reach the network. Best effort: where the kernel or a
    container's seccomp profile refuses unshare(2), the audit hook alone stands.
    Must run while the process has one thread (unshare refuses CLONE_NEWUSER otherwise)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    return any(libc.unshare(flags) == 0 for flags in (CLONE_NEWUSER | CLONE_NEWNET, CLONE_NEWNET))


def die_with(parent_pid: int) -> None:
    """Be killed when the API process that started this one dies (SIGKILL, the OOM
    killer): the validator runs in a session of its own, so nothing else would stop a
    hung one, and the time limit died with the parent. (The signal follows the thread
    that started this process: the API's event loop, which lives as long as it does.)"""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os._exit(1)


def confine(memory_bytes: int) -> bool:
    """Limits that hold for the rest of this process's life (an audit hook cannot be
    removed; ``RLIMIT_AS`` can be lowered but not raised again by an unprivileged
    process, and the hard limit is set too). True if the network namespace is its own."""
    isolated = leave_network()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # A crash must not write a core file (it would hold the upload's content).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # If the machine or the pod's cgroup runs short of memory anyway, the kernel's OOM
    # killer takes this process, not the API server beside it.
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass  # not Linux, or /proc not mounted: RLIMIT_AS still holds
    sys.addaudithook(_refuse)
    return isolated


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is a failed allocation."""
    return any(isinstance(e, MemoryError) or _ALLOCATION_FAILED.search(str(e)) for e in _chain(exc))


def refused_by_sandbox(exc: BaseException) -> SandboxRefusal | None:
    """The audit hook's refusal behind ``exc`` (a library may have wrapped it), if any."""
    return next((e for e in _chain(exc) if isinstance(e, SandboxRefusal)), None)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def inspect_and_plan(path: Path, filename: str) -> dict[str, Any]:
    """Validate the file, and record which runtime will serve it: onnxruntime when the
    conversion agrees with the library on a sample, else the library itself."""
    from mlops.modelformats import inspect_model, load_runtime

    info = inspect_model(path, filename)
    runtime = load_runtime(path, info)
    details = {**info.details, "serving_runtime": runtime.name}
    if runtime.fallback_reason:
        details["serving_runtime_note"] = runtime.fallback_reason
    answer: dict[str, Any] = info.model_copy(update={"details": details}).model_dump(mode="json")
    return answer


def run(inspect: Inspect, path: Path, filename: str) -> dict[str, Any]:
    """The envelope for one file: never raises (but for a crash no code can catch)."""
    from mlops.errors import PlatformError
    from mlops.modelformats.library_errors import first_line

    try:
        return {"ok": inspect(path, filename)}
    except MemoryError:
        return {"memory": "MemoryError"}
    except Exception as exc:
        refusal = refused_by_sandbox(exc)
        if refusal is not None:
            return {"forbidden": str(refusal)}
        if out_of_memory(exc):
            return {"memory": f"{type(exc).__name__}: {first_line(str(exc))}"}
        if isinstance(exc, PlatformError):
            return {
                "refused": {"type": type(exc).__name__, "code": exc.code, "message": exc.message}
            }
        return {"failed": f"{type(exc).__name__}: {first_line(str(exc))}"}


def vm_peak_kib() -> int | None:
    """The most address space this process held (what ``RLIMIT_AS`` limits)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmPeak:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def take_stdout() -> IO[bytes]:
    """The answer channel: the stdout this process was given. File descriptor 1 then
    points at stderr, so a library's prints cannot corrupt the answer."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return answer


def main(inspect: Inspect = inspect_and_plan) -> int:
    answer = take_stdout()
    request = json.loads(sys.stdin.buffer.read(MAX_REQUEST_BYTES))
    die_with(int(request["parent_pid"]))
    isolated = confine(int(request["memory_bytes"]))
    envelope = run(inspect, Path(request["path"]), str(request["filename"]))
    envelope.update(vm_peak_kib=vm_peak_kib(), own_network_namespace=isolated)
    answer.write(json.dumps(envelope).encode())
    answer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
