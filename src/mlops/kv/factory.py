"""Pick the key-value store from the settings."""

from __future__ import annotations

from mlops.config import Settings
from mlops.kv.base import KeyValueStore
from mlops.kv.guarded import GuardedKeyValueStore
from mlops.kv.memory import MemoryKeyValueStore
from mlops.kv.redis import RedisKeyValueStore


def create_kv(settings: Settings) -> KeyValueStore:
    if settings.redis_url:
        redis = RedisKeyValueStore(settings.redis_url, namespace=settings.redis_namespace)
        return GuardedKeyValueStore(redis)
    return MemoryKeyValueStore()
