"""Throttling wrong passwords without handing attackers a lock-out lever (issue 9, item 3).

Every test drives the limiter's clock, so waits end without sleeping.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.auth.throttle import caller_at, try_login, use_clock
from tests.conftest import start_platform

ATTACKER = "203.0.113.5"
ADMIN_AT_HOME = "198.51.100.7"
WRONG = "not-the-password"


async def test_the_pairs_wait_grows_with_each_failure(settings_factory: Any) -> None:
    settings = settings_factory(login_failures_per_pair=3, login_window_seconds=900)
    async for platform in start_platform(settings):
        clock = use_clock(platform)
        async with caller_at(platform, ATTACKER) as attacker:
            for _ in range(3):
                assert (await try_login(attacker, password=WRONG)).status_code == 401
            waits = []
            for _ in range(4):
                refused = await try_login(attacker)  # even the right password waits its turn
                assert refused.status_code == 429, refused.text
                waits.append(int(refused.headers["Retry-After"]))
                clock.advance(waits[-1])
                assert (await try_login(attacker, password=WRONG)).status_code == 401
            assert waits == [1, 2, 4, 8]
            clock.advance(16)
            assert (await try_login(attacker)).status_code == 200
            # A success clears the pair: one more mistake is answered, not throttled.
            assert (await try_login(attacker, password=WRONG)).status_code == 401
            assert (await try_login(attacker)).status_code == 200


async def test_hammering_admin_from_one_address_does_not_lock_out_the_admin(
    settings_factory: Any,
) -> None:
    settings = settings_factory(
        login_failures_per_pair=3, login_failures_per_user=8, login_window_seconds=900
    )
    async for platform in start_platform(settings):
        clock = use_clock(platform)
        async with caller_at(platform, ATTACKER) as attacker:
            waits = []
            for _ in range(30):
                response = await try_login(attacker, password=WRONG)
                if response.status_code == 429:
                    waits.append(int(response.headers["Retry-After"]))
                    clock.advance(waits[-1])
                else:
                    assert response.status_code == 401
            # Doubling waits; from the username's ceiling (the 8th failure) on, the
            # attacker's address gets one guess a window.
            assert waits[:6] == [1, 2, 4, 8, 16, 900]
            assert set(waits[5:]) == {900}
        async with caller_at(platform, ADMIN_AT_HOME) as admin:
            assert (await try_login(admin)).status_code == 200
        # The username is under attack: a new address gets one guess, then the window.
        async with caller_at(platform, "192.0.2.44") as other:
            assert (await try_login(other, password=WRONG)).status_code == 401
            slowed = await try_login(other, password=WRONG)
            assert slowed.status_code == 429
            assert slowed.headers["Retry-After"] == "900"


async def test_a_spray_over_many_usernames_does_not_lock_out_others(
    settings_factory: Any,
) -> None:
    settings = settings_factory(login_failures_per_client=5, login_failures_per_pair=3)
    async for platform in start_platform(settings):
        clock = use_clock(platform)
        async with caller_at(platform, ATTACKER) as attacker:
            for i in range(5):
                response = await try_login(attacker, f"user{i}", WRONG)
                assert response.status_code == 401
            # Every username from the spraying address now waits, and the wait grows.
            for username in ("user9", "admin"):
                refused = await try_login(attacker, username, WRONG)
                assert refused.status_code == 429
                assert refused.headers["Retry-After"] == "1"
            clock.advance(1)
            assert (await try_login(attacker, "user10", WRONG)).status_code == 401
            assert (await try_login(attacker, "user11", WRONG)).headers["Retry-After"] == "2"
        async with caller_at(platform, ADMIN_AT_HOME) as admin:
            assert (await try_login(admin)).status_code == 200
        assert (await try_login(platform.client)).status_code == 200


async def test_an_untrusted_forwarded_for_is_ignored(settings_factory: Any) -> None:
    # No trusted proxies (the default): the peer address is the client, whatever it claims.
    settings = settings_factory(login_failures_per_client=3)
    async for platform in start_platform(settings):
        use_clock(platform)
        for i in range(3):
            spoofed = {"X-Forwarded-For": f"10.0.0.{i + 1}"}
            response = await try_login(platform.client, f"user{i}", WRONG, headers=spoofed)
            assert response.status_code == 401
        fresh_claim = await try_login(platform.client, headers={"X-Forwarded-For": "10.9.9.9"})
        assert fresh_claim.status_code == 429


async def test_a_trusted_proxys_forwarded_for_counts(settings_factory: Any) -> None:
    # platform.client reaches the app from 127.0.0.9: the proxy here.
    settings = settings_factory(login_failures_per_client=3, trusted_proxies="127.0.0.9/32")
    async for platform in start_platform(settings):
        use_clock(platform)
        proxy = platform.client
        via_proxy = {"X-Forwarded-For": ATTACKER}
        for i in range(3):
            response = await try_login(proxy, f"user{i}", WRONG, headers=via_proxy)
            assert response.status_code == 401
        assert (await try_login(proxy, headers=via_proxy)).status_code == 429
        # The attacker prepends an address; the proxy appends the real one, which counts.
        spoofed = {"X-Forwarded-For": f"{ADMIN_AT_HOME}, {ATTACKER}"}
        assert (await try_login(proxy, headers=spoofed)).status_code == 429
        # Another client behind the same proxy is not throttled.
        admin = {"X-Forwarded-For": ADMIN_AT_HOME}
        assert (await try_login(proxy, headers=admin)).status_code == 200
        # An address outside the trusted proxies cannot claim to forward for others.
        async with caller_at(platform, ATTACKER) as direct:
            claimed = await try_login(direct, headers={"X-Forwarded-For": "192.0.2.77"})
            assert claimed.status_code == 429


async def test_a_burst_of_parallel_guesses_cannot_slip_past_the_count(
    settings_factory: Any,
) -> None:
    settings = settings_factory(login_failures_per_pair=3)
    async for platform in start_platform(settings):
        use_clock(platform)  # time stands still: no wait ends during the burst
        async with caller_at(platform, ATTACKER) as attacker:
            burst = await asyncio.gather(*(try_login(attacker, password=WRONG) for _ in range(20)))
        statuses = [response.status_code for response in burst]
        # Each guess is checked again once it has a turn (two at once per process), so at
        # most one guess beyond the limit was in flight when the limit was reached.
        assert statuses.count(401) <= 3 + 1, statuses
        assert statuses.count(429) == 20 - statuses.count(401)
