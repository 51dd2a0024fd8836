"""Small shared key-value state: Redis when configured, in-process otherwise."""

from mlops.kv.base import KeyValueStore, KeyValueUnavailable
from mlops.kv.factory import create_kv

__all__ = ["KeyValueStore", "KeyValueUnavailable", "create_kv"]
