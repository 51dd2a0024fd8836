"""Login: success, uniform failures, throttling and recovery, bounded hashing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

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


async def test_unknown_user_costs_a_hash_too(platform: Platform) -> None:
    """No user enumeration by timing: both paths verify one argon2 hash."""

    async def timed(username: str) -> float:
        start = time.perf_counter()
        await platform.client.post(
            "/api/v1/auth/login", json={"username": username, "password": "x" * 12}
        )
        return time.perf_counter() - start

    # The floor is a real argon2 verification (tens of ms), not a fast dictionary miss.
    unknown = min([await timed(f"ghost{i}") for i in range(3)])
    known = min([await timed("admin") for _ in range(3)])
    assert unknown > 0.004
    assert unknown > known / 4


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


async def test_fifty_concurrent_logins_do_not_stall_other_requests(settings_factory: Any) -> None:
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
        await asyncio.sleep(0.05)
        health = await platform.client.get("/health")
        assert health.status_code == 200
        # The health answer came back while most logins were still waiting their turn.
        assert sum(task.done() for task in hashing) < 25
        results = await asyncio.gather(*hashing)
        assert all(r.status_code == 200 for r in results)


async def test_login_body_is_validated(platform: Platform) -> None:
    cases: list[tuple[Any, int]] = [
        ({"username": "admin"}, 422),
        ({"username": "admin", "password": "x", "role": "admin"}, 422),
        ({"username": "a" * 65, "password": "x"}, 422),
        ([1, 2], 422),
    ]
    for body, status in cases:
        response = await platform.client.post("/api/v1/auth/login", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    raw = await platform.client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["code"] == "invalid_json"
