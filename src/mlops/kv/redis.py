"""Redis-backed key-value store, shared by every process of the platform.

Every failure to reach Redis comes out as ``KeyValueUnavailable`` (503 with
``Retry-After``); ``GuardedKeyValueStore`` wraps this store to fail fast and
recover while Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator, Sequence

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from mlops.kv.base import KeyValueStore, KeyValueUnavailable

# Redis unreachable, timing out, loading its data after a restart (a ConnectionError),
# or a replica during a failover: all pass; anything else is a bug and stays a 500.
_OUTAGE_ERRORS = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,
)
_SCAN_BATCH = 1000


@contextlib.contextmanager
def _unavailable_on_outage() -> Iterator[None]:
    try:
        yield
    except _OUTAGE_ERRORS as exc:
        raise KeyValueUnavailable() from exc


class RedisKeyValueStore(KeyValueStore):
    shared = True

    def __init__(self, url: str, *, namespace: str = "mlops:") -> None:
        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=2,
            health_check_interval=30,
        )
        self._ns = namespace
        self._url = url

    def _k(self, key: str) -> str:
        return self._ns + key

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        with _unavailable_on_outage():
            values = await self._redis.mget([self._k(k) for k in keys])
        # decode_responses=True: every value is a str or None.
        return [None if v is None else str(v) for v in values]

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        with _unavailable_on_outage():
            await self._redis.set(self._k(key), value, px=_ms(ttl))

    async def set_if_absent(self, key: str, value: str, *, ttl: float | None = None) -> bool:
        with _unavailable_on_outage():
            return bool(await self._redis.set(self._k(key), value, px=_ms(ttl), nx=True))

    async def increment(self, key: str, *, ttl: float) -> tuple[int, float]:
        full = self._k(key)
        with _unavailable_on_outage():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                # NX: only the first increment starts the window.
                pipe.pexpire(full, _ms(ttl) or 1, nx=True)
                pipe.pttl(full)
                count, _, left_ms = await pipe.execute()
        return int(count), max(0.0, int(left_ms) / 1000)

    async def delete(self, *keys: str) -> None:
        if keys:
            with _unavailable_on_outage():
                await self._redis.delete(*(self._k(k) for k in keys))

    async def delete_matching(self, prefix: str) -> int:
        pattern = _glob_escape(self._k(prefix)) + "*"
        deleted = 0
        with _unavailable_on_outage():
            batch: list[str] = []
            async for key in self._redis.scan_iter(match=pattern, count=_SCAN_BATCH):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    deleted += int(await self._redis.unlink(*batch))
                    batch.clear()
            if batch:
                deleted += int(await self._redis.unlink(*batch))
        return deleted

    async def ping(self) -> None:
        with _unavailable_on_outage():
            await self._redis.ping()

    async def publish(self, channel: str, message: str) -> None:
        with _unavailable_on_outage():
            await self._redis.publish(self._k(channel), message)

    async def subscribe(self, channel: str) -> AsyncGenerator[str | None, None]:
        # Its own connection without a read timeout: a quiet channel is not an error.
        client: Redis = Redis.from_url(
            self._url, decode_responses=True, socket_connect_timeout=2, health_check_interval=15
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            with _unavailable_on_outage():
                await pubsub.subscribe(self._k(channel))
            while True:
                # Short reads, so cancellation never waits on a quiet socket.
                with _unavailable_on_outage():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.25)
                if message is not None and message["type"] == "message":
                    yield str(message["data"])
                else:
                    yield None
        finally:
            # Closing a connection that was cancelled mid-read can wait forever in
            # redis-py; bound it, the connection is discarded anyway.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 2)  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 2)

    async def close(self) -> None:
        await self._redis.aclose()


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, int(ttl * 1000))


def _glob_escape(text: str) -> str:
    # SCAN MATCH is a glob: a namespace holding * ? [ ] or \ must match itself only.
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
