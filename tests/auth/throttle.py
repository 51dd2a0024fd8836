"""Helpers for login-throttle tests: a clock the test moves, callers at other addresses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from mlops.auth.ratelimit import LoginLimiter, LoginPolicy
from tests.conftest import ADMIN_PASSWORD, Platform


class FakeClock:
    """Wall time that moves only when the test says so: waits end without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def use_clock(platform: Platform) -> FakeClock:
    """Give the platform's login limiter a clock the test controls (same store, same policy)."""
    clock = FakeClock()
    platform.ctx.login_limiter = LoginLimiter(
        platform.ctx.kv, LoginPolicy.of(platform.settings), clock=clock
    )
    return clock


@asynccontextmanager
async def caller_at(platform: Platform, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests reach the app from ``address``."""
    transport = httpx.ASGITransport(app=platform.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def try_login(
    client: httpx.AsyncClient,
    username: str = "admin",
    password: str = ADMIN_PASSWORD,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, headers=headers
    )
