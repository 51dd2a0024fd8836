"""Pick the key-value store from the settings."""

from __future__ import annotations

from mlops.config import Settings
from mlops.kv.base import KeyValueStore
from mlops.kv.guarded import GuardedKeyValueStore
from mlops.kv.memory import MemoryKeyValueStore


def create_kv(settings: Settings) -> KeyValueStore:
    if settings.redis_url:
        # Imported here: the redis client costs ~0.2 s at start, and the embedded
        # default never uses it.
        from mlops.kv.redis import RedisKeyValueStore

        redis = RedisKeyValueStore(settings.redis_url, namespace=settings.redis_namespace)
        return GuardedKeyValueStore(redis)
    return MemoryKeyValueStore()
