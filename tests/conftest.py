"""Shared fixtures: every API test runs on the embedded defaults (SQLite, in-process
state) and on PostgreSQL plus Redis.

PostgreSQL and Redis are the real servers at 127.0.0.1 (``.ci/run`` starts them);
where they do not answer, the run starts throwaway ones (tests/services.py, ADR 0007).
Each test run gets its own PostgreSQL database, migrated once; tests truncate the
tables, and each test gets its own Redis key namespace.
"""

from __future__ import annotations

import inspect
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from mlops.api.app import ALL_COMPONENTS, create_app
from mlops.bootstrap import ensure_first_admin
from mlops.config import Settings, load_settings
from mlops.context import PlatformContext, create_context
from mlops.db.models import Base
from mlops.db.schema import upgrade_database
from tests.seaweed import seaweedfs_server
from tests.services import Service, ServiceError, ensure_postgres, ensure_redis

PG_ADMIN_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("MLOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = os.environ.get("MLOPS_TEST_BACKENDS", "embedded,postgres").split(",")
ADMIN_PASSWORD = "Tr1cky-Admin-Passphrase"
SECRET_KEY = "k" * 64
__all__ = ["seaweedfs_server"]  # registers the S3 server fixture for every test package
_SERVICES = pytest.StashKey[list[Service]]()


def pytest_configure(config: pytest.Config) -> None:
    """PostgreSQL and Redis answer at the configured addresses, or this run starts its
    own; xdist workers inherit the addresses from the controller's environment."""
    global PG_ADMIN_URL, REDIS_URL
    if os.environ.get("PYTEST_XDIST_WORKER") or "postgres" not in BACKENDS:
        return
    services: list[Service] = []
    try:
        services.append(ensure_postgres(PG_ADMIN_URL))
        services.append(ensure_redis(REDIS_URL))
    except ServiceError as exc:
        for service in services:
            if service.stop is not None:
                service.stop()
        raise pytest.UsageError(str(exc)) from None
    for service in services:
        if service.stop is not None:
            config.add_cleanup(service.stop)
    PG_ADMIN_URL, REDIS_URL = services[0].url, services[1].url
    os.environ["MLOPS_TEST_POSTGRES_URL"] = PG_ADMIN_URL
    os.environ["MLOPS_TEST_REDIS_URL"] = REDIS_URL
    config.stash[_SERVICES] = services


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [service.describe() for service in config.stash.get(_SERVICES, [])]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Every async test runs on asyncio through anyio's pytest plugin; marking the
    # function before anyio's own hook sees it is what makes the plugin pick it up.
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their settings explicitly; the caller's MLOPS_* variables do not leak in."""
    for name in list(os.environ):
        if name.startswith("MLOPS_") and not name.startswith("MLOPS_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run (dropped at the end)."""
    name = f"mlops_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}). Start it (see README, "
            "Testing) or set MLOPS_TEST_BACKENDS=embedded to run only the embedded backend."
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL}/{name}"
    upgrade_database(load_settings(database_url=url, secret_key=SECRET_KEY))
    yield url
    with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}). Start it (see README).")
    yield client
    client.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time is slower)."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    upgrade_database(load_settings(data_dir=data_dir, secret_key=SECRET_KEY))
    return data_dir / "mlops.db"


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def settings_factory(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """Build Settings for this test's backend; keyword arguments override fields."""
    namespace = f"test-{uuid.uuid4().hex[:12]}:"
    if backend == "postgres":
        pg_url: str = request.getfixturevalue("postgres_url")
        client: redis.Redis = request.getfixturevalue("redis_client")
        _truncate_postgres(pg_url)
    else:
        template: Path = request.getfixturevalue("sqlite_template")
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        shutil.copy(template, data_dir / "mlops.db")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "secret_key": SECRET_KEY,
            "admin_password": ADMIN_PASSWORD,
            "log_json": True,
        }
        if backend == "postgres":
            values.update(database_url=pg_url, redis_url=REDIS_URL, redis_namespace=namespace)
        values.update(overrides)
        return load_settings(**values)

    yield make
    if backend == "postgres":
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)


@dataclass
class Platform:
    """A running app with a client; ``ctx`` is the app's own context."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def ctx(self) -> PlatformContext:
        ctx: PlatformContext = self.app.state.ctx
        return ctx

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        response = await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def create_user(
        self, admin_token: str, username: str, role: str, password: str | None = None
    ) -> str:
        password = password or f"{username}-Passphrase-42"
        response = await self.client.post(
            "/api/v1/users",
            json={"username": username, "password": password, "role": role},
            headers=bearer(admin_token),
        )
        assert response.status_code == 201, response.text
        return password


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def start_platform(
    settings: Settings, components: Collection[str] = ALL_COMPONENTS
) -> AsyncIterator[Platform]:
    ctx = create_context(settings)
    try:
        await ensure_first_admin(ctx)
    finally:
        await ctx.close()
    app = create_app(settings, components=components)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Platform(app=app, client=client, settings=settings)


@asynccontextmanager
async def running_platform(
    settings: Settings, components: Collection[str] = ALL_COMPONENTS
) -> AsyncIterator[Platform]:
    """``start_platform`` as a context manager, to run several processes' apps at once."""
    async for platform in start_platform(settings, components=components):
        yield platform


def postgres_settings(
    postgres_url: str, redis_url: str, data_dir: Path, namespace: str, **overrides: Any
) -> Settings:
    """Settings on this run's PostgreSQL database (emptied first) and the given Redis."""
    _truncate_postgres(postgres_url)
    return load_settings(
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        admin_password=ADMIN_PASSWORD,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_namespace=namespace,
        **overrides,
    )


@pytest.fixture
async def platform(settings_factory: Any) -> AsyncIterator[Platform]:
    async for running in start_platform(settings_factory()):
        yield running


@pytest.fixture
async def admin_token(platform: Platform) -> str:
    return await platform.login()
