"""In-process key-value store for the single-process embedded platform."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence

from mlops.bounded import BoundedDict
from mlops.kv.base import KeyValueStore

_NEVER = float("inf")
IDLE_TICK_SECONDS = 0.25


class MemoryKeyValueStore(KeyValueStore):
    """Bounded in size, so unknown keys (random usernames, say) cannot exhaust memory."""

    shared = False

    def __init__(self, max_entries: int = 200_000) -> None:
        # (value, monotonic deadline); expired entries are dropped when read.
        self._cache: BoundedDict[str, tuple[str, float]] = BoundedDict(max_entries)
        self._channels: dict[str, set[asyncio.Queue[str]]] = {}

    @staticmethod
    def _deadline(ttl: float | None) -> float:
        return _NEVER if ttl is None else time.monotonic() + ttl

    def _entry(self, key: str) -> tuple[str, float] | None:
        entry = self._cache.get(key)
        if entry is not None and entry[1] != _NEVER and entry[1] <= time.monotonic():
            del self._cache[key]
            return None
        return entry

    def _get(self, key: str) -> str | None:
        entry = self._entry(key)
        return None if entry is None else entry[0]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self._get(key) for key in keys]

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self._cache[key] = (value, self._deadline(ttl))

    async def set_if_absent(self, key: str, value: str, *, ttl: float | None = None) -> bool:
        if self._get(key) is not None:
            return False
        self._cache[key] = (value, self._deadline(ttl))
        return True

    async def increment(self, key: str, *, ttl: float) -> tuple[int, float]:
        entry = self._entry(key)
        if entry is None:
            deadline = self._deadline(ttl)
            count = 1
        else:
            count, deadline = int(entry[0]) + 1, entry[1]
        self._cache[key] = (str(count), deadline)
        return count, max(0.0, deadline - time.monotonic())

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._cache.pop(key, None)

    async def delete_matching(self, prefix: str) -> int:
        keys = [key for key in self._cache if key.startswith(prefix)]
        for key in keys:
            del self._cache[key]
        return len(keys)

    async def ping(self) -> None:
        return None

    async def publish(self, channel: str, message: str) -> None:
        for queue in self._channels.get(channel, ()):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncGenerator[str | None, None]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._channels.setdefault(channel, set()).add(queue)
        try:
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), IDLE_TICK_SECONDS)
                except TimeoutError:
                    yield None
        finally:
            self._channels[channel].discard(queue)

    async def close(self) -> None:
        self._cache.clear()
