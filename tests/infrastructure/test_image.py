"""The container image, built and run with podman as the Kubernetes manifests run it:
`mlops db upgrade` (the migration Job, which alone holds the admin password and makes
the first admin), then `mlops api` and `mlops model-server` as
the non-root user on a read-only root filesystem (tmpfs for /tmp and the data dir),
with every capability dropped, MLOPS_ENVIRONMENT=production, against the host's
PostgreSQL and Redis: /health and /ready answer 200, an admin logs in, uploads a
model and gets a prediction through the guide's route.

Slow the first time (the base comes from scripts/ci-tools.sh; a cold build takes a
few minutes, a build whose lock did not change about half a minute). In CI (CI=true)
a missing podman is a failure; elsewhere a skip that says so (tests/system_tools.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from mlops.modelformats.demo import build_demo_model
from tests.infrastructure.bundle import ROOT
from tests.services import free_port
from tests.system_tools import missing

CACHE = Path(os.environ.get("MLOPS_CI_CACHE", "/var/cache/mlops-ci"))
BASE_IMAGE = "localhost/debian-python:bookworm-slim"
IMAGE = "localhost/mlops-platform:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PG_ADMIN_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("MLOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN_PASSWORD = "Image-Test-Passphrase-42"
DEADLINE_S = 180.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _podman(*args: str, timeout: float = 120, check: bool = True, stderr: bool = False) -> str:
    env = {**os.environ, "CONTAINERS_CONF": str(CACHE / "containers.conf")}
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}... failed: {done.stderr[-3000:]}")
    return done.stdout + (done.stderr if stderr else "")


def _exists(image: str) -> bool:
    env = {**os.environ, "CONTAINERS_CONF": str(CACHE / "containers.conf")}
    return subprocess.run(["podman", "image", "exists", image], env=env).returncode == 0


@pytest.fixture(scope="module")
def image() -> str:
    usable = (
        shutil.which("podman") is not None
        and (CACHE / "containers.conf").exists()
        and _exists(BASE_IMAGE)
    )
    if not usable:
        missing("podman or its base image")
    ca = ["-v", f"{HOST_CA}:/host-ca.crt:ro", "--build-arg", "SSL_CERT_FILE=/host-ca.crt"]
    _podman(
        "build",
        "--network=host",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        *(ca if HOST_CA.exists() else []),
        "--build-arg",
        "REVISION=test",
        "-f",
        str(ROOT / "Containerfile"),
        "-t",
        IMAGE,
        str(ROOT),
        timeout=1500,
    )
    # Earlier builds of the final image would pile up run after run (each holds the
    # whole environment); the build stage's layers stay, as the cache.
    label = "label=org.opencontainers.image.title=mlops-platform"
    _podman("image", "prune", "-f", "--filter", label, check=False)
    return IMAGE


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"mlops_image_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = PG_ADMIN_URL.split("://", 1)[1]
    yield f"postgresql://{host}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def artifacts() -> Iterator[Path]:
    """A directory both containers share as the artifact store (user 10001's), where
    that user can reach it (pytest's own temporary folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="mlops-image-artifacts-"))
    path.chmod(0o700)
    os.chown(path, 10001, 10001)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run_args(database: str, artifacts: Path) -> list[str]:
    env = {
        "MLOPS_ENVIRONMENT": "production",
        "MLOPS_DATABASE_URL": database,
        "MLOPS_REDIS_URL": REDIS_URL,
        "MLOPS_REDIS_NAMESPACE": f"img{uuid.uuid4().hex[:8]}:",
        "MLOPS_SECRET_KEY": SECRET_KEY,
        "MLOPS_METRICS_TOKEN": METRICS_TOKEN,
        "MLOPS_ARTIFACT_STORE": "file:///srv/artifacts",
        "MLOPS_DEFAULT_MODEL": "demo",
        "MLOPS_CATALOG_POLL_SECONDS": "2",
    }
    # As the manifests run it: non-root, read-only root, no capabilities.
    args = [
        "--network=host",
        "--read-only",
        "--user",
        "10001:10001",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/tmp:rw,size=256m",
        "--tmpfs",
        "/var/lib/mlops:rw,size=1g,U",  # U: owned by the container user
        "-v",
        f"{artifacts}:/srv/artifacts",
    ]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return args


SECRET_KEY = secrets.token_urlsafe(48)
METRICS_TOKEN = secrets.token_urlsafe(32)


def _wait_ready(url: str, started: float) -> float:
    deadline = started + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url}/ready did not answer 200 within {DEADLINE_S:.0f} s")


@pytest.fixture(scope="module")
def servers(image: str, database: str, artifacts: Path) -> Iterator[dict[str, str]]:
    args = _run_args(database, artifacts)
    # Only the migration Job holds the admin password: it makes the first admin.
    admin = ["-e", f"MLOPS_ADMIN_PASSWORD={ADMIN_PASSWORD}"]
    migrate = _podman("run", "--rm", *args, *admin, image, "db", "upgrade", timeout=300)
    assert "database schema is at" in migrate
    assert "first admin admin created from MLOPS_ADMIN_PASSWORD" in migrate
    names, urls, cold = [], {}, {}
    try:
        for command in ("api", "model-server"):
            port = free_port()
            name = f"mlops-image-{command}-{uuid.uuid4().hex[:6]}"
            started = time.monotonic()
            _podman(
                "run",
                "-d",
                "--name",
                name,
                *args,
                image,
                command,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            )
            names.append(name)
            urls[command] = f"http://127.0.0.1:{port}"
            cold[command] = _wait_ready(urls[command], started)
        print(f"cold start to ready: {json.dumps({k: round(v, 1) for k, v in cold.items()})}")
        yield urls
    finally:
        for name in names:
            logs = _podman("logs", "--tail", "40", name, check=False, stderr=True)
            _podman("rm", "-f", "-t", "5", name, check=False)
            print(f"--- {name}\n{logs}")


def test_image_is_non_root_without_build_tools_and_labelled(image: str) -> None:
    config = json.loads(_podman("image", "inspect", image))[0]
    assert config["Config"]["User"] == "10001:10001"
    assert "ORT_DISABLE_TELEMETRY=1" in config["Config"]["Env"]
    labels = config["Config"]["Labels"]
    for key in ("version", "revision", "source"):
        assert labels[f"org.opencontainers.image.{key}"], key
    assert labels["org.opencontainers.image.revision"] == "test"
    probe = _podman(
        "run",
        "--rm",
        "--read-only",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "for t in gcc cc make strip uv pip; do command -v $t || echo no-$t; done;"
        " for t in pg_isready pg_dump pg_restore psql redis-cli; do $t --version | head -1; done;"
        # podman leaves an empty mount point where the build mounted the CA bundle.
        " [ -s /host-ca.crt ] && echo ca-bundle-copied || echo no-ca-bundle; id -u",
    )
    lines = probe.splitlines()
    assert lines[-1] == "10001"
    assert {"no-gcc", "no-cc", "no-make", "no-strip", "no-uv", "no-pip"} <= set(lines)
    assert lines[-2] == "no-ca-bundle"  # the build's CA bundle was not copied in
    # The guide's troubleshooting (pg_isready, redis-cli) and mlops backup's programs run:
    # their libraries are there.
    versions = [line for line in lines if "PostgreSQL) 15." in line or "redis-cli " in line]
    assert [v.split()[0] for v in versions] == [
        "pg_isready",
        "pg_dump",
        "pg_restore",
        "psql",
        "redis-cli",
    ], lines
    # What the pruning and stripping in the Containerfile keep works: every library the
    # platform loads, doing what the platform does with it.
    checks = Path(__file__).with_name("image_checks.py")
    done = _podman(
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-v",
        f"{checks}:/checks.py:ro",
        "--entrypoint",
        "python3",
        image,
        "/checks.py",
        timeout=300,
    )
    assert done.count("ok: ") == 6, done
    size_mb = config["Size"] / 1e6
    print(f"image size: {size_mb:.0f} MB")


def test_api_and_model_server_serve_read_only_in_production(servers: dict[str, str]) -> None:
    for url in servers.values():
        assert httpx.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(f"{url}/ready", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        # /metrics wants Prometheus' token in production.
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 401
        metrics = httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
        )
        assert metrics.status_code == 200
    api, serving = servers["api"], servers["model-server"]
    login = httpx.post(
        f"{api}/api/v1/auth/login",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    model = build_demo_model(Path(os.environ.get("TMPDIR", "/tmp")) / uuid.uuid4().hex)
    assert (
        httpx.post(
            f"{api}/api/v1/models", json={"name": "demo"}, headers=auth, timeout=30
        ).status_code
        == 201
    )
    with model.open("rb") as handle:
        upload = httpx.post(
            f"{api}/api/v1/models/demo/versions",
            headers=auth,
            timeout=120,
            files={"file": (model.name, handle)},
        )
    assert upload.status_code == 201, upload.text
    alias = httpx.put(
        f"{api}/api/v1/models/demo/aliases/production",
        json={"version": 1},
        headers=auth,
        timeout=30,
    )
    assert alias.status_code == 200, alias.text
    # The guide's request, on the model server (it hears of the alias through Redis).
    deadline = time.monotonic() + DEADLINE_S
    while True:
        answer = httpx.post(
            f"{serving}/api/v1/models/predict",
            json={"data": [[1, 2, 3, 4, 5]]},
            headers=auth,
            timeout=30,
        )
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "demo" and body["version"] == 1
    assert body["predictions"] in ([0], [1])
