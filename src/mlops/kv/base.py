"""The key-value interface that rate limits, revocation and caches share.

Two implementations keep the same contract: ``RedisKeyValueStore`` (shared by
every process) and ``MemoryKeyValueStore`` (the single-process default).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence


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
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    @abc.abstractmethod
    async def publish(self, channel: str, message: str) -> None: ...

    @abc.abstractmethod
    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """Messages published on ``channel`` after the subscription started, and ``None``
        a few times a second while it is quiet, so a subscriber can stop without being
        cancelled mid-read."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def get(self, key: str) -> str | None:
        return (await self.get_many([key]))[0]
