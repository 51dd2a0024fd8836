"""Logged-out tokens leave the database once they have expired anyway."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mlops.auth.models import RevokedToken, User
from mlops.auth.revocation_purge import KEEP_AFTER_EXPIRY, RevocationPurger
from mlops.bootstrap import ensure_first_admin
from mlops.context import create_context
from mlops.db.session import transaction
from tests.conftest import Platform, start_platform

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DEADLINE_S = 30.0


def rows_expiring(now: datetime) -> dict[str, datetime]:
    return {
        "expired-long-ago": now - timedelta(days=2),
        # Within the signature check's leeway a token still verifies: its row must stay.
        "just-expired": now - KEEP_AFTER_EXPIRY + timedelta(seconds=5),
        "live": now + timedelta(hours=1),
    }


async def add_revocations(sessions: Any, rows: dict[str, datetime]) -> None:
    async with transaction(sessions) as session:
        admin = await session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        for jti, expires_at in rows.items():
            session.add(RevokedToken(jti=jti, user_id=admin.id, expires_at=expires_at))


async def remaining(sessions: Any) -> set[str]:
    async with sessions() as session:
        return set(await session.scalars(select(RevokedToken.jti)))


async def test_run_once_removes_expired_revocations_and_keeps_live_ones(
    platform: Platform,
) -> None:
    sessions = platform.ctx.sessions
    await add_revocations(sessions, rows_expiring(NOW))
    purger = RevocationPurger(sessions=sessions, interval=3600, clock=lambda: NOW)
    assert await purger.run_once() == 1
    assert await remaining(sessions) == {"just-expired", "live"}
    assert await purger.run_once() == 0

    later = RevocationPurger(
        sessions=sessions, interval=3600, clock=lambda: NOW + timedelta(days=1)
    )
    assert await later.run_once() == 2
    assert await remaining(sessions) == set()


async def test_the_api_process_purges_on_its_own(settings_factory: Any) -> None:
    settings = settings_factory()
    ctx = create_context(settings)
    try:
        await ensure_first_admin(ctx)
        await add_revocations(ctx.sessions, rows_expiring(datetime.now(UTC)))
    finally:
        await ctx.close()
    async for platform in start_platform(settings, components=["api"]):
        deadline = time.monotonic() + DEADLINE_S
        while "expired-long-ago" in await remaining(platform.ctx.sessions):
            if time.monotonic() > deadline:
                pytest.fail(f"the expired revocation was not purged within {DEADLINE_S} s")
            await asyncio.sleep(0.1)
        assert await remaining(platform.ctx.sessions) == {"just-expired", "live"}
