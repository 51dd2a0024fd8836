"""Redis-backed key-value store, shared by every process of the platform."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from redis.asyncio import Redis

from mlops.kv.base import KeyValueStore


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
        values = await self._redis.mget([self._k(k) for k in keys])
        # decode_responses=True: every value is a str or None.
        return [None if v is None else str(v) for v in values]

    async def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        await self._redis.set(self._k(key), value, px=_ms(ttl))

    async def set_if_absent(self, key: str, value: str, *, ttl: float | None = None) -> bool:
        return bool(await self._redis.set(self._k(key), value, px=_ms(ttl), nx=True))

    async def increment(self, key: str, *, ttl: float) -> tuple[int, float]:
        full = self._k(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(full)
            # NX: only the first increment starts the window.
            pipe.pexpire(full, _ms(ttl) or 1, nx=True)
            pipe.pttl(full)
            count, _, left_ms = await pipe.execute()
        return int(count), max(0.0, int(left_ms) / 1000)

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(self._k(k) for k in keys))

    async def ping(self) -> None:
        await self._redis.ping()

    async def publish(self, channel: str, message: str) -> None:
        await self._redis.publish(self._k(channel), message)

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        # Its own connection without a read timeout: a quiet channel is not an error.
        client: Redis = Redis.from_url(
            self._url, decode_responses=True, socket_connect_timeout=2, health_check_interval=15
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._k(channel))
            while True:
                # Short reads, so cancellation never waits on a quiet socket.
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
