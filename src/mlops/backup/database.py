"""What the two database shapes share: which one the settings name, and a snapshot's contents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from mlops.backup.manifest import VersionEntry
from mlops.config import Settings
from mlops.db.models import Base

VERSION_TABLE = "alembic_version"
PLATFORM_TABLES = tuple(table.name for table in Base.metadata.sorted_tables)
DIALECT_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


class Cursor(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class Snapshot:
    """What one consistent view of the database holds."""

    revision: str
    counts: dict[str, int]
    versions: list[VersionEntry]


def dialect_of(settings: Settings) -> str:
    backend = make_url(settings.resolved_database_url).get_backend_name()
    if backend not in DIALECT_NAMES:
        raise ValueError(f"unsupported database {backend!r}")
    return backend


def read_snapshot(cursor: Cursor, tables: set[str]) -> Snapshot:
    """Revision, row counts and version artifacts, read through ``cursor`` (one view)."""
    revision = ""
    if VERSION_TABLE in tables:
        cursor.execute(f"SELECT version_num FROM {VERSION_TABLE}")
        rows = cursor.fetchall()
        revision = ",".join(sorted(str(row[0]) for row in rows))
    counts = {}
    for table in PLATFORM_TABLES:
        if table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = int(cursor.fetchall()[0][0])
    versions = []
    if "model_versions" in tables:
        cursor.execute("SELECT storage_key, sha256 FROM model_versions ORDER BY id")
        versions = [VersionEntry(str(key), str(sha)) for key, sha in cursor.fetchall()]
    return Snapshot(revision=revision, counts=counts, versions=versions)
