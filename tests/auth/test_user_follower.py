"""User changes made by another process reach a server without Redis (issue 9, item 9).

``other`` below is a second platform context on the same database without Redis, as the
``mlops users`` commands have: its cache is its own, so only the database carries the
change. tests/cli/test_users_live.py does the same with a real ``mlops up``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from mlops.auth import service
from mlops.auth.follower import UserChangeFollower
from mlops.auth.principal import Principal
from mlops.auth.roles import Role
from mlops.context import PlatformContext, create_context
from mlops.db.session import transaction
from tests.conftest import Platform, bearer

CLI = Principal(user_id=0, username="cli", role=Role.admin, via="token")


@pytest.fixture
async def other(platform: Platform) -> AsyncIterator[PlatformContext]:
    ctx = create_context(platform.settings.model_copy(update={"redis_url": None}))
    yield ctx
    await ctx.close()


async def _status(platform: Platform, credential: str) -> int:
    response = await platform.client.get("/api/v1/users/me", headers=bearer(credential))
    return response.status_code


async def _disable(ctx: PlatformContext, username: str, disabled: bool) -> None:
    async with transaction(ctx.sessions) as session:
        await service.update_user(
            session=session, gate=ctx.gate, actor=CLI, username=username, role=None,
            disabled=disabled,
        )  # fmt: skip


async def test_a_change_elsewhere_reaches_this_process_on_the_next_look(
    platform: Platform, admin_token: str, other: PlatformContext
) -> None:
    password = await platform.create_user(admin_token, "kim", "editor")
    token = await platform.login("kim", password)
    created = await platform.client.post(
        "/api/v1/api-keys", json={"name": "k"}, headers=bearer(token)
    )
    key = created.json()["key"]
    follower = UserChangeFollower(sessions=platform.ctx.sessions, gate=platform.ctx.gate)
    await follower.run_once()
    assert [await _status(platform, c) for c in (token, key)] == [200, 200]  # now cached

    await _disable(other, "kim", True)
    # The cached state still says enabled: this is what the follower is for.
    assert [await _status(platform, c) for c in (token, key)] == [200, 200]
    assert await follower.run_once() == 1
    assert [await _status(platform, c) for c in (token, key)] == [401, 401]

    await _disable(other, "kim", False)
    assert await follower.run_once() == 1
    # Enabled again: the old token ended with the change, the key stays revoked.
    assert [await _status(platform, c) for c in (token, key)] == [401, 401]
    assert await platform.login("kim", password)
    assert await follower.run_once() == 0  # nothing new: nothing published again


async def test_a_password_reset_elsewhere_ends_tokens_and_keys(
    platform: Platform, admin_token: str, other: PlatformContext
) -> None:
    password = await platform.create_user(admin_token, "lou", "viewer")
    token = await platform.login("lou", password)
    key = (
        await platform.client.post("/api/v1/api-keys", json={"name": "k"}, headers=bearer(token))
    ).json()["key"]
    follower = UserChangeFollower(sessions=platform.ctx.sessions, gate=platform.ctx.gate)
    await follower.run_once()
    assert [await _status(platform, c) for c in (token, key)] == [200, 200]
    async with transaction(other.sessions) as session:
        await service.set_password(
            session=session, hasher=other.hasher, gate=other.gate, actor="cli",
            username="lou", password="Lou-Reset-Passphrase-5",
        )  # fmt: skip
    await follower.run_once()
    assert [await _status(platform, c) for c in (token, key)] == [401, 401]


async def test_a_running_server_applies_a_change_made_elsewhere_by_itself(
    platform: Platform, admin_token: str
) -> None:
    """As ``mlops users disable`` does: same settings, another process. Embedded, the
    server's follower reads it from the database; with Redis, it is published there."""
    password = await platform.create_user(admin_token, "max", "viewer")
    token = await platform.login("max", password)
    assert await _status(platform, token) == 200
    cli = create_context(platform.settings)
    try:
        await _disable(cli, "max", True)
    finally:
        await cli.close()
    deadline = time.monotonic() + 30  # the follower looks every second; generous for CI
    while await _status(platform, token) == 200:
        assert time.monotonic() < deadline, "the change did not reach the server"
        await asyncio.sleep(0.1)
    assert await _status(platform, token) == 401
