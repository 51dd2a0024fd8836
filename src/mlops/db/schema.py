"""Schema version checks and upgrades (Alembic), on SQLite and PostgreSQL.

Checking the schema (at every start and on every /ready) does not import Alembic: the
head revision is read from the migration files' ``revision``/``down_revision``
assignments, and the current one from Alembic's ``alembic_version`` table. Alembic
(with Mako and Pygments, half a second to import) loads only to apply migrations.
tests/test_schema.py checks that both readings agree with Alembic's own.
"""

from __future__ import annotations

import ast
import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mlops.config import Settings, sync_database_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
# Alembic logs INFO lines (its plugins, each migration step) that tell a user nothing.
logging.getLogger("alembic").setLevel(logging.WARNING)
UPGRADE_HINT = "run `mlops db upgrade` (with the same settings) and start again"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str:
    """The revision no migration builds on (there must be exactly one)."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values = _assignments(path, ("revision", "down_revision"))
        revision = values.get("revision")
        if not isinstance(revision, str):
            raise RuntimeError(f"{path.name} assigns no revision string")
        down = values.get("down_revision")
        revisions[revision] = down if isinstance(down, str) else None
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, found {sorted(heads)}")
    return heads.pop()


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """Module-level ``name = <literal>`` (or annotated) assignments of ``path``."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            found[target.id] = ast.literal_eval(value)
    return found


def upgrade_database(settings: Settings) -> None:
    """Apply every pending migration (blocking)."""
    from alembic import command

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
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    if len(rows) != 1:
        # None (never migrated) or several (branches, which these migrations never have).
        return None if not rows else ",".join(sorted(str(row[0]) for row in rows))
    return str(rows[0][0])


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
