"""The workers' own database engine.

On SQLite every worker transaction starts with ``BEGIN IMMEDIATE``: it takes the write
lock at once (waiting up to the busy timeout), so a claim's read and its write see the
same state. A plain deferred transaction that reads and then writes fails at once with
"database is locked" when another process wrote in between. PostgreSQL needs nothing
special: claims lock their row with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mlops.config import Settings
from mlops.db.session import create_engine, create_session_factory


def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    # WAL with synchronous=NORMAL: a commit is durable across a crashed process, and a
    # power loss can only undo the last ones (a completed task then runs again, which
    # the queue is built for); one fsync per commit made small jobs disk-bound.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sync_connect(dbapi_connection: Any, record: Any) -> None:
    # What the platform's engine sets (mlops.db.session), then the workers' own.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    _no_implicit_begin(dbapi_connection, record)


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_worker_engine(settings: Settings) -> AsyncEngine:
    engine = create_engine(settings)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _no_implicit_begin)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def create_sync_worker_engine(url: URL) -> Engine:
    """A synchronous engine on the same SQLite file, for the queue's transactions, which
    run whole in a thread (``mlops.workers.queue``); the same pragmas and ``BEGIN
    IMMEDIATE``. Connections move between the threads of the default executor."""
    engine = create_sync_engine(
        url.set(drivername="sqlite"), connect_args={"check_same_thread": False}
    )
    event.listen(engine, "connect", _sync_connect)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def worker_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)
