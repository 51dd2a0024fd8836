"""Async engine and session factory.

Services ``flush()``; the request's session dependency commits once at the end
and rolls back on any error, so a failed request leaves no half-written rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mlops.config import Settings
from mlops.errors import TemporarilyUnavailable


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; busy_timeout waits instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout,
        )
        sync_engine: Engine = engine.sync_engine
        event.listen(sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        # A restarted database leaves dead connections in the pool; test before use.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any exception."""
    async with factory() as session:
        try:
            yield session
            await commit(session)
        except BaseException:
            session.info.pop("post_commit", None)
            await session.rollback()
            raise


PostCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, action: PostCommit) -> None:
    """Run ``action`` once the session's transaction has committed (cache updates, events).

    While Redis is down the action may be replayed later, after newer changes, so it
    must not move shared state back in time (cache overwrites swallow the outage
    instead, as ``AccessGate.publish_user`` does)."""
    session.info.setdefault("post_commit", []).append(action)


async def commit(session: AsyncSession) -> None:
    """Commit, then run the actions queued with ``after_commit``."""
    await session.commit()
    await run_post_commit(session)


async def run_post_commit(session: AsyncSession) -> None:
    """Run the queued actions. The change is already in: an action that fails because
    Redis is down goes back to the store, which replays it once Redis is back, rather
    than failing a request whose retry would repeat the change."""
    actions: list[PostCommit] = session.info.pop("post_commit", [])
    for action in actions:
        try:
            await action()
        except TemporarilyUnavailable as exc:
            if exc.replay_later is None:
                raise
            exc.replay_later(action)
