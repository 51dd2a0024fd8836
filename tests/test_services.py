"""The suite's own PostgreSQL and Redis, for machines where none answers (ADR 0007)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from tests import services
from tests.services import (
    ServiceError,
    ensure_postgres,
    ensure_redis,
    postgres_answers,
    redis_answers,
)

CLOSED_PG = "postgresql://postgres@127.0.0.1:1"
CLOSED_REDIS = "redis://127.0.0.1:1/15"


def test_where_nothing_answers_real_servers_are_started_and_stopped() -> None:
    pg = ensure_postgres(CLOSED_PG)
    try:
        assert pg.stop is not None and pg.url != CLOSED_PG
        assert "started for this run" in pg.describe()
        with psycopg.connect(f"{pg.url}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE fallback_check")
            row = conn.execute("SHOW server_version").fetchone()
            assert row is not None and int(str(row[0]).split(".")[0]) >= 15
    finally:
        if pg.stop is not None:
            pg.stop()
    assert not postgres_answers(pg.url)

    cache = ensure_redis(CLOSED_REDIS)
    try:
        assert cache.stop is not None and cache.url.endswith("/15")
        client = redis.Redis.from_url(cache.url)
        # The platform's Redis commands, e.g. PEXPIRE ... NX (Redis 7+), work on it.
        assert client.set("k", "v")
        assert client.pexpire("k", 1000, nx=True)
        assert int(str(client.info("server")["redis_version"]).split(".")[0]) >= 7
        client.close()
    finally:
        if cache.stop is not None:
            cache.stop()
    assert not redis_answers(cache.url)


def test_servers_that_answer_are_used_as_they_are() -> None:
    from tests import conftest

    pg = ensure_postgres(conftest.PG_ADMIN_URL)
    cache = ensure_redis(conftest.REDIS_URL)
    assert (pg.url, pg.stop) == (conftest.PG_ADMIN_URL, None)
    assert (cache.url, cache.stop) == (conftest.REDIS_URL, None)


def test_a_build_that_does_not_start_gives_way_to_the_next(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = services.redis_binaries()
    assert real, "no redis-server build here"
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(services, "redis_binaries", lambda: [(broken, "broken"), *real])
    cache = ensure_redis(CLOSED_REDIS)
    try:
        assert cache.origin == real[0][1]
    finally:
        if cache.stop is not None:
            cache.stop()


def test_without_any_build_the_run_stops_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "postgres_bin_dirs", lambda: [])
    monkeypatch.setattr(services, "redis_binaries", lambda: [])
    with pytest.raises(ServiceError, match="PostgreSQL does not answer at .*:1 .*uv sync"):
        ensure_postgres(CLOSED_PG)
    with pytest.raises(ServiceError, match="MLOPS_TEST_BACKENDS=embedded"):
        ensure_redis(CLOSED_REDIS)
