"""Login: success, uniform failures, throttling and recovery, bounded hashing."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from argon2 import PasswordHasher

from tests.auth.throttle import use_clock
from tests.conftest import ADMIN_PASSWORD, Platform, bearer, start_platform


async def test_login_returns_a_bearer_token_that_opens_me(platform: Platform) -> None:
    response = await platform.client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == platform.settings.access_token_ttl_seconds
    me = await platform.client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["role"] == "admin"


async def test_wrong_password_and_unknown_user_look_the_same(platform: Platform) -> None:
    wrong = await platform.client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "not-the-password"}
    )
    unknown = await platform.client.post(
        "/api/v1/auth/login", json={"username": "nobody-here", "password": "not-the-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_unknown_user_costs_a_hash_too(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No user enumeration by timing: an unknown user and a known one each cost one
    argon2 verification with the same parameters. Counted, not timed: on a busy machine
    timings say nothing either way."""
    verified: list[str] = []
    original = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        text = hash.decode() if isinstance(hash, bytes) else hash
        verified.append(text.rsplit("$", 2)[0])  # $argon2id$v=19$m=...,t=...,p=...
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    for username in ("nobody-here", "admin"):
        response = await platform.client.post(
            "/api/v1/auth/login", json={"username": username, "password": "x" * 12}
        )
        assert response.status_code == 401
    assert len(verified) == 2, verified
    assert verified[0] == verified[1] and verified[0].startswith("$argon2id$")


async def test_wrong_passwords_make_the_pair_wait_then_it_recovers(settings_factory: Any) -> None:
    settings = settings_factory(login_failures_per_pair=3)
    async for platform in start_platform(settings):
        clock = use_clock(platform)
        for _ in range(3):
            bad = await platform.client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": "wrong-password!"}
            )
            assert bad.status_code == 401
        locked = await platform.client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "login_locked"
        assert locked.headers["Retry-After"] == "1"
        clock.advance(1)
        assert await platform.login()


async def test_wrong_passwords_from_one_address_over_many_usernames(
    settings_factory: Any,
) -> None:
    settings = settings_factory(login_failures_per_client=4)
    async for platform in start_platform(settings):
        use_clock(platform)
        for i in range(4):
            await platform.client.post(
                "/api/v1/auth/login", json={"username": f"user{i}", "password": "wrong-password!"}
            )
        # Another username from the same address waits too.
        response = await platform.client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        metrics = (await platform.client.get("/metrics")).text
        assert 'mlops_login_failures_total{reason="invalid_credentials"} 4.0' in metrics
        assert 'mlops_login_failures_total{reason="locked"} 1.0' in metrics


async def test_success_resets_the_pair_counter(settings_factory: Any) -> None:
    settings = settings_factory(login_failures_per_pair=3)
    async for platform in start_platform(settings):
        for _ in range(2):
            await platform.client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": "wrong-password!"}
            )
        await platform.login()
        for _ in range(2):
            await platform.client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": "wrong-password!"}
            )
        assert await platform.login()


async def test_fifty_concurrent_logins_do_not_stall_other_requests(
    settings_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing runs off the event loop: while every login is held inside argon2, other
    requests are answered. Held by an event, not raced against a sleep."""
    release = threading.Event()
    entered: list[int] = []
    original = PasswordHasher.verify

    def held(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        entered.append(1)
        assert release.wait(timeout=120), "the test never released the logins"
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", held)
    settings = settings_factory(login_failures_per_client=1000)
    async for platform in start_platform(settings):
        hashing = [
            asyncio.create_task(
                platform.client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
                )
            )
            for _ in range(50)
        ]
        deadline = time.monotonic() + 60
        while not entered:  # a login is inside argon2 now
            assert time.monotonic() < deadline, "no login reached argon2"
            await asyncio.sleep(0.01)
        health = await platform.client.get("/health")
        assert health.status_code == 200
        assert not any(task.done() for task in hashing)  # all still inside argon2
        release.set()
        results = await asyncio.gather(*hashing)
        assert all(r.status_code == 200 for r in results)
