"""PostgreSQL: pg_dump (custom format) from one exported snapshot, restore in one transaction.

The snapshot the dump reads is also the one the manifest's counts and version rows
come from, so the manifest describes exactly what the dump holds. Passwords reach
pg_dump, pg_restore and psql through ``PGPASSWORD``, never their command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import IsolationLevel
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from mlops.backup.database import PLATFORM_TABLES, VERSION_TABLE, Snapshot, read_snapshot
from mlops.backup.manifest import BackupError
from mlops.config import Settings

TOOLS = ("pg_dump", "pg_restore", "psql")


def libpq_connection(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq conninfo without the password, and the environment that carries it."""
    url = make_url(settings.resolved_database_url)
    params = {k: v for k, v in url.query.items() if isinstance(v, str)}
    conninfo = make_conninfo(
        "",
        host=url.host or None,
        port=url.port or None,
        user=url.username or None,
        dbname=url.database or None,
        **params,
    )
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return conninfo, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed: PostgreSQL backups need the PostgreSQL client tools "
            "(Debian: apt-get install postgresql-client), of the server's major version or newer"
        )
    return path


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _tables(cursor: psycopg.Cursor[tuple[object, ...]]) -> set[str]:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(row[0]) for row in cursor.fetchall()}


def _connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    conninfo, env = libpq_connection(settings)
    try:
        return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from None


def dump(settings: Settings, dest: Path) -> Snapshot:
    """Write the database to ``dest`` and describe what was written."""
    pg_dump = _tool("pg_dump")
    conninfo, env = libpq_connection(settings)
    with _connect(settings) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = str(cursor.fetchall()[0][0])
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot_id}",
                    f"--file={dest}",
                    f"--dbname={conninfo}",
                ],
                env,
                "pg_dump",
            )
            # Still inside the exported snapshot: the same rows pg_dump saw.
            return read_snapshot(cursor, _tables(cursor))


def current(settings: Settings) -> Snapshot:
    """What the target database holds now (for the non-empty check)."""
    with _connect(settings) as conn, conn.cursor() as cursor:
        return read_snapshot(cursor, _tables(cursor))


def check_archive(path: Path) -> set[str]:
    """Read the archive's table of contents (fails on a corrupt one); its tables."""
    listing = _run([_tool("pg_restore"), "--list", str(path)], dict(os.environ), "pg_restore")
    tables = set()
    for line in listing.splitlines():
        parts = line.split()
        # "215; 1259 16390 TABLE public users postgres"
        if len(parts) >= 6 and parts[3] == "TABLE" and parts[4] == "public":
            tables.add(parts[5])
    return tables


def restore(settings: Settings, path: Path) -> None:
    """Replace the platform's tables with the archive's, all in one transaction."""
    conninfo, env = libpq_connection(settings)
    archive_tables = check_archive(path)
    with _connect(settings) as conn, conn.cursor() as cursor:
        existing = _tables(cursor)
    doomed = sorted(existing & ({*PLATFORM_TABLES, VERSION_TABLE} | archive_tables))
    drops = "".join(f'DROP TABLE IF EXISTS public."{name}" CASCADE;\n' for name in doomed)
    producer = subprocess.Popen(
        [_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert producer.stdout is not None
    try:
        applied = subprocess.run(
            [
                _tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={conninfo}",
                "--command",
                drops or "SELECT 1;",
                "--file=-",
            ],
            stdin=producer.stdout,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    finally:
        producer.stdout.close()
        producer_err = ""
        if producer.stderr is not None:
            producer_err = producer.stderr.read().decode()
            producer.stderr.close()
        producer.wait()
    if producer.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was changed): {producer_err.strip()}")
    if applied.returncode != 0:
        raise BackupError(f"psql failed (nothing was changed): {applied.stderr.strip()}")
