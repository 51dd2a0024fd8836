"""Drill fixtures: a cluster of server processes on a throwaway PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.drills.cluster import Cluster
from tests.registry.conftest import model_files
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis, throwaway_postgres, throwaway_redis

__all__ = ["model_files", "throwaway_postgres", "throwaway_redis"]  # fixtures


@pytest.fixture
async def cluster(
    throwaway_postgres: ThrowawayPostgres, throwaway_redis: ThrowawayRedis, tmp_path: Path
) -> AsyncIterator[Cluster]:
    root = tmp_path / "cluster"
    root.mkdir()
    running = Cluster(throwaway_postgres, throwaway_redis, root)
    try:
        yield running
    finally:
        running.close()
