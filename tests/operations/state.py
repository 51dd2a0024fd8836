"""Read a platform's whole state (every row, every stored object) to compare two of them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from mlops.backup.location import open_location
from mlops.config import Settings, sync_database_url
from mlops.context import create_artifact_store
from mlops.db.models import Base


def rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(sync_database_url(settings.resolved_database_url))
    try:
        with engine.connect() as conn:
            found = {
                table.name: [
                    tuple(row)
                    for row in conn.execute(
                        select(table).order_by(*table.primary_key.columns)
                    ).all()
                ]
                for table in Base.metadata.sorted_tables
            }
            found["alembic_version"] = [
                tuple(r) for r in conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
            return found
    finally:
        engine.dispose()


async def objects(settings: Settings) -> dict[str, str]:
    """Every stored object's sha256, by key."""
    store = create_artifact_store(settings)
    found = {}
    try:
        for key in await store.list_keys(""):
            digest = hashlib.sha256()
            async for chunk in store.open_stream(key):
                digest.update(chunk)
            found[key] = digest.hexdigest()
    finally:
        await store.close()
    return found


async def rewrite_backup_file(
    location: str, settings: Settings, key: str, tmp: Path, edit: Callable[[bytes], bytes]
) -> None:
    """Replace one file of a backup with ``edit`` of its bytes, as an attacker or a
    damaged disk would."""
    store = open_location(location, settings, must_exist=True)
    try:
        local = tmp / "edit"
        await store.get_file(key, local)
        local.write_bytes(edit(local.read_bytes()))
        await store.put_file(key, local)
    finally:
        await store.close()
