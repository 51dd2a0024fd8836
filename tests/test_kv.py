"""The key-value stores keep one contract: values, expiry, counters (in-process and Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from mlops.bounded import BoundedDict
from mlops.kv.base import KeyValueStore
from mlops.kv.memory import MemoryKeyValueStore
from mlops.kv.redis import RedisKeyValueStore
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[KeyValueStore]:
    if request.param == "memory":
        kv: KeyValueStore = MemoryKeyValueStore()
    else:
        request.getfixturevalue("redis_client")
        kv = RedisKeyValueStore(REDIS_URL, namespace=f"test-kv-{uuid.uuid4().hex[:12]}:")
    yield kv
    await kv.delete("a", "b", "gone", "kept", "count", "short", "first")
    await kv.close()


async def _until_gone(store: KeyValueStore, key: str) -> None:
    """Expiry is checked by polling with a generous deadline, never by a read that must
    come within a few tenths of a second on a busy machine."""
    deadline = time.monotonic() + 30
    while await store.get(key) is not None:
        assert time.monotonic() < deadline, f"{key!r} never expired"
        await asyncio.sleep(0.02)


async def test_values_and_expiry(store: KeyValueStore) -> None:
    await store.set("a", "1")
    await store.set("kept", "x", ttl=600)
    await store.set("gone", "y", ttl=0.05)
    assert await store.get_many(["a", "kept", "b"]) == ["1", "x", None]
    await _until_gone(store, "gone")
    assert await store.get_many(["a", "kept"]) == ["1", "x"]
    await store.delete("a")
    assert await store.get("a") is None


async def test_set_if_absent_and_increment_keep_their_deadline(store: KeyValueStore) -> None:
    assert await store.set_if_absent("first", "1", ttl=60)
    assert not await store.set_if_absent("first", "2", ttl=60)
    assert await store.get("first") == "1"
    count, first_left = await store.increment("count", ttl=600)
    assert count == 1 and 0 < first_left <= 600
    count, left = await store.increment("count", ttl=600)
    assert count == 2 and 0 < left <= first_left  # the window does not restart
    count, _ = await store.increment("short", ttl=0.05)
    assert count == 1
    await _until_gone(store, "short")
    count, _ = await store.increment("short", ttl=0.05)
    assert count == 1  # a new window once the last one ended


async def test_the_in_process_store_is_bounded() -> None:
    kv = MemoryKeyValueStore(max_entries=3)
    for key in "abcd":
        await kv.set(key, key)
    assert await kv.get_many(list("abcd")) == [None, "b", "c", "d"]


def test_bounded_dict_forgets_the_oldest_entries() -> None:
    cache: BoundedDict[str, int] = BoundedDict(2)
    cache["a"] = 1
    cache["b"] = 2
    cache["a"] = 3  # an update, not a new entry: nothing is evicted
    assert dict(cache) == {"a": 3, "b": 2}
    cache["c"] = 4
    assert dict(cache) == {"b": 2, "c": 4}
    with pytest.raises(ValueError, match="at least 1"):
        BoundedDict(0)
