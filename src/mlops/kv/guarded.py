"""``GuardedKeyValueStore``: a shared store (Redis) that may become unreachable.

While it is down, every call fails at once with ``KeyValueUnavailable`` (503 with
``Retry-After``) instead of each request waiting on a dead socket, and a background
probe pings it every second. When it answers again, the recovery hooks run first
(auth drops cached credential state that may have gone stale while nobody could
update it), then the store serves again, and work deferred during the outage
(registry events after a commit) is replayed. Subscriptions wait out the outage and
say ``RESUMED`` when they listen again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence

from mlops.errors import Replayable
from mlops.kv.base import RESUMED, KeyValueStore, KeyValueUnavailable, RecoveryHook
from mlops.kv.memory import IDLE_TICK_SECONDS

log = logging.getLogger("mlops.kv")
PROBE_SECONDS = 1.0
MAX_DEFERRED = 10_000


class GuardedKeyValueStore(KeyValueStore):
    """Wraps a store whose failures raise ``KeyValueUnavailable``."""

    shared = True

    def __init__(
        self,
        inner: KeyValueStore,
        *,
        probe_seconds: float = PROBE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._probe_seconds = probe_seconds
        self._clock = clock
        self._down_since: float | None = None
        self._back = asyncio.Event()
        self._back.set()
        self._probe: asyncio.Task[None] | None = None
        self._hooks: list[RecoveryHook] = []
        self._deferred: deque[Replayable] = deque()
        self.outages_total = 0
        self.errors_total = 0  # calls that failed because the store was unreachable

    # Health, for metrics and logs.

    @property
    def up(self) -> bool:
        return self._down_since is None

    def outage_seconds(self) -> float:
        """How long the current outage has lasted; 0 while the store is up."""
        return 0.0 if self._down_since is None else self._clock() - self._down_since

    def on_recovery(self, hook: RecoveryHook) -> None:
        self._hooks.append(hook)

    def replay_later(self, action: Replayable) -> None:
        """Run ``action`` again once the store is back (offered by ``KeyValueUnavailable``)."""
        if len(self._deferred) >= MAX_DEFERRED:
            # Only registry events are deferred, and model servers also poll the registry.
            self._deferred.popleft()
            log.warning("too many updates deferred while Redis is down; dropping the oldest")
        self._deferred.append(action)

    # The store's operations: fail fast while down, notice when it goes down.

    def _check(self) -> None:
        if self._down_since is not None:
            self.errors_total += 1
            raise KeyValueUnavailable(replay_later=self.replay_later)

    def _failed(self, cause: KeyValueUnavailable) -> KeyValueUnavailable:
        self.errors_total += 1
        self._went_down(cause)
        return KeyValueUnavailable(replay_later=self.replay_later)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        self._check()
        try:
            return await self._inner.get_many(keys)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self._check()
        try:
            await self._inner.set(key, value, ttl=ttl)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def set_if_absent(self, key: str, value: str, *, ttl: float | None = None) -> bool:
        self._check()
        try:
            return await self._inner.set_if_absent(key, value, ttl=ttl)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def increment(self, key: str, *, ttl: float) -> tuple[int, float]:
        self._check()
        try:
            return await self._inner.increment(key, ttl=ttl)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def delete(self, *keys: str) -> None:
        self._check()
        try:
            await self._inner.delete(*keys)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def delete_matching(self, prefix: str) -> int:
        self._check()
        try:
            return await self._inner.delete_matching(prefix)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def ping(self) -> None:
        self._check()
        try:
            await self._inner.ping()
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def publish(self, channel: str, message: str) -> None:
        self._check()
        try:
            await self._inner.publish(channel, message)
        except KeyValueUnavailable as exc:
            raise self._failed(exc) from exc

    async def subscribe(self, channel: str) -> AsyncGenerator[str | None, None]:
        seen_outages = self.outages_total
        while True:
            if self._down_since is not None:
                # Tick like a quiet channel, so the subscriber can still stop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._back.wait(), IDLE_TICK_SECONDS)
                yield None
                continue
            try:
                async with contextlib.aclosing(self._inner.subscribe(channel)) as messages:
                    async for message in messages:
                        if seen_outages != self.outages_total and self._down_since is None:
                            seen_outages = self.outages_total
                            yield RESUMED
                        yield message
            except KeyValueUnavailable as exc:
                self._failed(exc)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._inner.close()

    # Outage and recovery.

    def _went_down(self, cause: KeyValueUnavailable) -> None:
        if self._down_since is not None:
            return
        self._down_since = self._clock()
        self._back.clear()
        self.outages_total += 1
        log.error(
            "Redis is unreachable: requests answer on the credential state known to this "
            "process (within MLOPS_REDIS_OUTAGE_GRACE_SECONDS of reading it) or read from "
            "the database; logins and other calls that need Redis answer 503",
            extra={"cause": repr(cause.__cause__ or cause)},
        )
        self._probe = asyncio.create_task(self._probe_until_back(), name="redis-probe")

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self._probe_seconds)
            try:
                await self._inner.ping()
                for hook in self._hooks:
                    await hook(self._inner)
            except KeyValueUnavailable:
                continue
            except Exception:
                # A hook that cannot drop stale state must not let it be served.
                log.exception("Redis answers, but a recovery step failed; still treated as down")
                continue
            break
        assert self._down_since is not None
        down_for = self._clock() - self._down_since
        self._down_since = None
        self._back.set()
        log.warning(
            "Redis is reachable again",
            extra={"outage_seconds": round(down_for, 3), "deferred": len(self._deferred)},
        )
        await self._replay()

    async def _replay(self) -> None:
        while self._deferred and self._down_since is None:
            action = self._deferred[0]
            try:
                await action()
            except KeyValueUnavailable:
                return  # down again: kept for the next recovery
            except Exception:
                log.exception("dropping an update deferred during the Redis outage")
            self._deferred.popleft()
