"""The guarded Redis store through a real outage: fail fast, recover, replay, resubscribe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing

import pytest

from mlops.kv.base import RESUMED, KeyValueStore, KeyValueUnavailable
from mlops.kv.guarded import GuardedKeyValueStore
from mlops.kv.redis import RedisKeyValueStore
from tests.throwaway import ThrowawayRedis, throwaway_redis

__all__ = ["throwaway_redis"]  # the fixture
DEADLINE_S = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def guarded(throwaway_redis: ThrowawayRedis) -> AsyncIterator[GuardedKeyValueStore]:
    store = GuardedKeyValueStore(
        RedisKeyValueStore(throwaway_redis.url, namespace="t:"), probe_seconds=0.1
    )
    yield store
    await store.close()


async def test_calls_fail_fast_with_a_503_while_redis_is_down_and_work_after(
    guarded: GuardedKeyValueStore, throwaway_redis: ThrowawayRedis
) -> None:
    await guarded.set("a", "1")
    throwaway_redis.kill()
    with pytest.raises(KeyValueUnavailable) as raised:
        await guarded.get("a")
    assert raised.value.status_code == 503
    assert raised.value.headers["Retry-After"] == "5"
    assert not guarded.up
    # Down: the next calls do not touch the socket, and say so the same way.
    for call in (guarded.get("a"), guarded.increment("n", ttl=10), guarded.publish("c", "m")):
        with pytest.raises(KeyValueUnavailable):
            await call
    assert guarded.errors_total == 4
    assert guarded.outage_seconds() > 0

    throwaway_redis.start()

    async def back() -> bool:
        return guarded.up

    await eventually(back, "the store is up again")
    assert await guarded.get("a") == "1"  # the append-only file kept it
    assert guarded.outages_total == 1
    assert guarded.outage_seconds() == 0


async def test_recovery_hooks_run_on_redis_before_it_serves_again(
    guarded: GuardedKeyValueStore, throwaway_redis: ThrowawayRedis
) -> None:
    await guarded.set("tok:stale", "0")
    await guarded.set("keep", "1")
    seen_up_in_hook: list[bool] = []

    async def forget(store: KeyValueStore) -> None:
        seen_up_in_hook.append(guarded.up)
        await store.delete_matching("tok:")

    guarded.on_recovery(forget)
    throwaway_redis.kill()
    with pytest.raises(KeyValueUnavailable):
        await guarded.get("keep")
    throwaway_redis.start()

    async def back() -> bool:
        return guarded.up

    await eventually(back, "the store is up again")
    assert seen_up_in_hook == [False]  # the hook ran before anyone could read
    assert await guarded.get_many(["tok:stale", "keep"]) == [None, "1"]


async def test_work_deferred_during_the_outage_is_replayed_when_redis_is_back(
    guarded: GuardedKeyValueStore, throwaway_redis: ThrowawayRedis
) -> None:
    async def bump() -> None:
        await guarded.increment("generation", ttl=60)

    throwaway_redis.kill()
    with pytest.raises(KeyValueUnavailable) as raised:
        await bump()
    assert raised.value.replay_later is not None
    raised.value.replay_later(bump)
    throwaway_redis.start()

    async def replayed() -> bool:
        return guarded.up and await guarded.get("generation") == "1"

    await eventually(replayed, "the deferred increment ran")


async def test_a_subscription_waits_out_the_outage_and_says_it_resumed(
    guarded: GuardedKeyValueStore, throwaway_redis: ThrowawayRedis
) -> None:
    received: list[str] = []
    stop = asyncio.Event()

    async def listen() -> None:
        async with aclosing(guarded.subscribe("events")) as messages:
            async for message in messages:
                if stop.is_set():
                    return
                if message is not None:
                    received.append(message)

    def delivered(text: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            if text not in received and guarded.up:
                await guarded.publish("events", text)
                await asyncio.sleep(0.1)
            return text in received

        return check

    listener = asyncio.create_task(listen())
    try:
        await eventually(delivered("before"), "a message before the outage")
        throwaway_redis.kill()
        with pytest.raises(KeyValueUnavailable):
            await guarded.ping()
        throwaway_redis.start()
        await eventually(delivered("after"), "a message after the outage")
        # Messages published meanwhile are lost: the subscriber is told to re-read.
        assert RESUMED in received
        assert received.index(RESUMED) < received.index("after")
        assert not listener.done()
    finally:
        stop.set()
        await asyncio.wait_for(listener, 10)
