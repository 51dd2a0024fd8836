"""While Redis is down, credential state is trusted for the grace period after it was
read, then read from the database again; with the database down too, a 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from mlops.auth.access import AccessGate
from mlops.auth.models import RevokedToken
from mlops.config import load_settings
from mlops.db.failures import DatabaseUnavailable
from mlops.db.session import create_session_factory
from mlops.errors import Unauthorized
from mlops.kv.guarded import GuardedKeyValueStore
from mlops.kv.redis import RedisKeyValueStore
from tests.conftest import (
    ADMIN_PASSWORD,
    SECRET_KEY,
    Platform,
    _truncate_postgres,
    bearer,
    start_platform,
)
from tests.throwaway import ThrowawayRedis, free_port, throwaway_redis

__all__ = ["throwaway_redis"]  # the fixture
GRACE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def platform(
    throwaway_redis: ThrowawayRedis, postgres_url: str, tmp_path: Path
) -> AsyncIterator[Platform]:
    _truncate_postgres(postgres_url)
    settings = load_settings(
        database_url=postgres_url,
        redis_url=throwaway_redis.url,
        data_dir=tmp_path / "data",
        secret_key=SECRET_KEY,
        admin_password=ADMIN_PASSWORD,
    )
    async for running in start_platform(settings, components=["api"]):
        yield running


async def test_known_state_holds_for_the_grace_period_then_comes_from_the_database(
    platform: Platform, throwaway_redis: ThrowawayRedis
) -> None:
    token = await platform.login()
    # The platform caches the token's state in Redis, as any earlier request would.
    assert (await platform.client.get("/api/v1/users/me", headers=bearer(token))).status_code == 200
    clock = Clock()
    kv = GuardedKeyValueStore(
        RedisKeyValueStore(throwaway_redis.url, namespace=platform.settings.redis_namespace)
    )
    dead_database = create_async_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone",
        connect_args={"connect_timeout": 2},
    )
    gates = {
        name: AccessGate(
            kv=kv,
            sessions=sessions,
            signer=platform.ctx.signer,
            outage_grace=GRACE,
            clock=clock,
        )
        for name, sessions in (
            ("database up", platform.ctx.sessions),
            ("database down", create_session_factory(dead_database)),
        )
    }
    try:
        for gate in gates.values():
            assert (await gate.authenticate(token)).username == "admin"  # read from Redis

        throwaway_redis.kill()
        claims = platform.ctx.signer.decode(token)
        async with platform.ctx.sessions() as session:  # another process logs it out
            session.add(
                RevokedToken(
                    jti=claims.jti,
                    user_id=claims.user_id,
                    expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
                )
            )
            await session.commit()

        clock.now += GRACE - 1
        for gate in gates.values():  # the bounded staleness the grace period allows
            assert (await gate.authenticate(token)).username == "admin"

        clock.now += 2
        with pytest.raises(Unauthorized) as revoked:
            await gates["database up"].authenticate(token)
        assert revoked.value.code == "token_revoked"
        with pytest.raises(DatabaseUnavailable) as unavailable:
            await gates["database down"].authenticate(token)
        assert unavailable.value.status_code == 503
        assert unavailable.value.headers["Retry-After"] == "5"
    finally:
        await kv.close()
        await dead_database.dispose()
