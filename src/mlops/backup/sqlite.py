"""SQLite: SQLite's online backup API, both ways.

The copy is a consistent snapshot even while the platform writes (the API restarts
or holds a read lock as needed); restoring copies the backup's pages into the target
in one transaction, so other connections see the old database or the new one.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from mlops.backup.database import Snapshot, read_snapshot
from mlops.backup.manifest import BackupError
from mlops.config import Settings


def database_path(settings: Settings) -> Path:
    database = make_url(settings.resolved_database_url).database
    if not database or database == ":memory:":
        raise BackupError("the SQLite database is in memory: there is nothing to back up")
    return Path(database)


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(row[0]) for row in rows}


def snapshot_of(path: Path) -> Snapshot:
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        return read_snapshot(conn.cursor(), _tables(conn))


def dump(settings: Settings, dest: Path) -> Snapshot:
    source = database_path(settings)
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}: check MLOPS_DATA_DIR")
    with (
        closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(dest)) as dst,
    ):
        src.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)
        # One self-contained file, without a -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    return snapshot_of(dest)


def current(settings: Settings) -> Snapshot:
    path = database_path(settings)
    if not path.is_file():
        return Snapshot(revision="", counts={}, versions=[])
    return snapshot_of(path)


def check_archive(path: Path) -> None:
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            result = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the SQLite database in the backup is corrupt: {exc}") from None
    if result != [("ok",)]:
        raise BackupError(f"the SQLite database in the backup is corrupt: {result[:3]}")


def restore(settings: Settings, path: Path) -> None:
    target = database_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (
        closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        dst.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)
