"""The key-value interface that rate limits, revocation and caches share.

Two implementations keep the same contract: ``RedisKeyValueStore`` (shared by
every process) and ``MemoryKeyValueStore`` (the single-process default).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from mlops.errors import Replayable, TemporarilyUnavailable

RETRY_AFTER_SECONDS = 5
# Yielded by ``subscribe`` once it listens again after the store was unreachable:
# messages published in between are lost, so a subscriber re-reads what it follows.
RESUMED = ""


class KeyValueUnavailable(TemporarilyUnavailable):
    """The shared store (Redis) cannot be reached: 503 with ``Retry-After``."""

    code = "redis_unavailable"

    def __init__(self, *, replay_later: Callable[[Replayable], None] | None = None) -> None:
        super().__init__(
            "Redis, which holds shared sign-in state and rate limits, is unreachable, so "
            f"this request cannot be served now; retry in {RETRY_AFTER_SECONDS} s.",
            retry_after=RETRY_AFTER_SECONDS,
            replay_later=replay_later,
        )


# Runs on the store itself (reachable again) before anything else uses it.
RecoveryHook = Callable[["KeyValueStore"], Awaitable[None]]


class KeyValueStore(abc.ABC):
    """String keys and values with optional expiry, in seconds."""

    shared: bool  # True when other processes see the same state

    @abc.abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Values for ``keys`` in order, ``None`` for missing or expired ones."""

    @abc.abstractmethod
    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: str, *, ttl: float | None = None) -> bool:
        """Store only when ``key`` is missing (cache fills must not overwrite newer writes)."""

    @abc.abstractmethod
    async def increment(self, key: str, *, ttl: float) -> tuple[int, float]:
        """Add one; the expiry starts at the first increment. Returns (count, seconds left)."""

    @abc.abstractmethod
    async def delete(self, *keys: str) -> None: ...

    @abc.abstractmethod
    async def delete_matching(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; returns how many there were."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    @abc.abstractmethod
    async def publish(self, channel: str, message: str) -> None: ...

    @abc.abstractmethod
    def subscribe(self, channel: str) -> AsyncGenerator[str | None, None]:
        """Messages published on ``channel`` after the subscription started, and ``None``
        a few times a second while it is quiet, so a subscriber can stop without being
        cancelled mid-read. A store that can become unreachable waits for it to come
        back and then yields ``RESUMED`` once (messages in between are lost)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def get(self, key: str) -> str | None:
        return (await self.get_many([key]))[0]

    def on_recovery(self, hook: RecoveryHook) -> None:
        """Run ``hook`` whenever the store is reachable again after an outage, before
        it serves anyone (to drop cached state that may have gone stale meanwhile).
        Stores that are never unreachable ignore it."""
        return None
