"""Registry change notifications, for model servers that follow aliases.

Published after the change committed, on the key-value store's pub/sub (Redis
across processes, in-process otherwise). A missed message is harmless: model
servers also poll.
"""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession

from mlops.db.session import after_commit
from mlops.kv import KeyValueStore
from mlops.kv.channels import REGISTRY_EVENTS, REGISTRY_GENERATION

GENERATION_TTL_SECONDS = 30 * 24 * 3600.0


def notify_after_commit(session: AsyncSession, kv: KeyValueStore, model: str, kind: str) -> None:
    message = json.dumps({"model": model, "kind": kind})

    async def notify() -> None:
        await kv.increment(REGISTRY_GENERATION, ttl=GENERATION_TTL_SECONDS)
        await kv.publish(REGISTRY_EVENTS, message)

    after_commit(session, notify)
