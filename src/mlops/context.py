"""Everything a running process shares: settings, database, caches, signers.

Built once in the app's lifespan from the ``Settings`` passed to ``create_app``
and handed to requests through dependencies; there is no import-time singleton.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mlops.auth.access import AccessGate
from mlops.auth.passwords import PasswordHasherPool
from mlops.auth.ratelimit import LoginLimiter, LoginPolicy
from mlops.auth.tokens import TokenSigner
from mlops.config import Settings, ensure_secret_key, previous_secret_keys
from mlops.db.session import create_engine, create_session_factory
from mlops.errors import ConfigError
from mlops.kv import KeyValueStore, create_kv
from mlops.storage import ArtifactStore, create_store


@dataclass
class PlatformContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    kv: KeyValueStore
    hasher: PasswordHasherPool
    signer: TokenSigner
    gate: AccessGate
    login_limiter: LoginLimiter
    store: ArtifactStore

    async def close(self) -> None:
        await self.store.close()
        await self.kv.close()
        await self.engine.dispose()
        self.hasher.close()


def create_hasher(settings: Settings) -> PasswordHasherPool:
    return PasswordHasherPool(
        memory_kib=settings.password_hash_memory_kib,
        time_cost=settings.password_hash_time_cost,
        concurrency=settings.password_hash_concurrency,
    )


def create_artifact_store(settings: Settings) -> ArtifactStore:
    try:
        return create_store(
            settings.resolved_artifact_store,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def create_context(settings: Settings) -> PlatformContext:
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    kv = create_kv(settings)
    signer = TokenSigner(
        ensure_secret_key(settings),
        settings.access_token_ttl_seconds,
        previous_keys=previous_secret_keys(settings),
    )
    return PlatformContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        kv=kv,
        hasher=create_hasher(settings),
        signer=signer,
        gate=AccessGate(
            kv=kv,
            sessions=sessions,
            signer=signer,
            outage_grace=settings.redis_outage_grace_seconds,
        ),
        login_limiter=LoginLimiter(
            kv, LoginPolicy.of(settings), concurrency=settings.password_hash_concurrency
        ),
        store=create_artifact_store(settings),
    )
