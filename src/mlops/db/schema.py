"""Schema version checks and upgrades (Alembic), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.ext.asyncio import AsyncEngine

from mlops.config import Settings, sync_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Alembic logs two INFO lines each time it looks at the schema, i.e. on every /ready.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
UPGRADE_HINT = "run `mlops db upgrade` (with the same settings) and start again"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def upgrade_database(settings: Settings) -> None:
    """Apply every pending migration (blocking)."""
    url = sync_database_url(settings.resolved_database_url)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def schema_status(engine: AsyncEngine) -> tuple[bool, str]:
    """(up to date, explanation)."""
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return True, f"at {head}"
    shown = current or "empty"
    return False, f"schema is at {shown}, code expects {head}: {UPGRADE_HINT}"
