"""``mlops backup restore``: check everything first, then write objects, then the database.

Every refusal (a corrupt or unfinished backup, a newer schema, the other database
shape, a non-empty target without ``force``) happens before anything is written.
The database is replaced in one transaction; objects are written before it, so a
restored version row always finds its artifact.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlops.backup import postgres, sqlite
from mlops.backup.database import DIALECT_NAMES, dialect_of
from mlops.backup.location import find_backup
from mlops.backup.manifest import BackupError, Manifest, object_key
from mlops.backup.signature import signing_keys
from mlops.backup.verify import fetch_and_verify, known_revisions
from mlops.config import Settings
from mlops.context import create_artifact_store
from mlops.kv import create_kv
from mlops.storage import ArtifactStore


@dataclass(frozen=True)
class Restored:
    location: str
    manifest: Manifest
    needs_upgrade: bool


def _check_shape(manifest: Manifest, dialect: str) -> None:
    if manifest.dialect != dialect:
        raise BackupError(
            f"the backup holds a {DIALECT_NAMES[manifest.dialect]} database and the settings "
            f"name {DIALECT_NAMES[dialect]}: restore it into a platform of the same shape "
            "(MLOPS_DATABASE_URL); moving between shapes is not supported"
        )


async def _check_empty(settings: Settings, dialect: str, store: ArtifactStore) -> None:
    reader = postgres.current if dialect == "postgresql" else sqlite.current
    current = await asyncio.to_thread(reader, settings)
    rows = {table: n for table, n in current.counts.items() if n}
    objects = len(await store.list_keys(""))
    if rows or objects:
        held = ", ".join(f"{n} {table}" for table, n in sorted(rows.items())) or "no rows"
        raise BackupError(
            f"the target platform is not empty ({held}; {objects} stored objects): "
            "nothing was changed. Restore into an empty platform, or pass --force to "
            "replace its database with the backup's"
        )


async def _forget_caches(settings: Settings) -> None:
    """Cached users, keys and registry state in Redis describe the old database."""
    kv = create_kv(settings)
    try:
        if kv.shared:
            await kv.delete_matching("")
    finally:
        await kv.close()


async def restore_backup(settings: Settings, source: str, *, force: bool = False) -> Restored:
    dialect = dialect_of(settings)
    keys = signing_keys(settings)
    location, backup = await find_backup(source, settings)
    store = create_artifact_store(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-restore-") as tmp:
            workdir = Path(tmp)
            manifest = await fetch_and_verify(backup, workdir, keys)
            _check_shape(manifest, dialect)
            if not force:
                await _check_empty(settings, dialect, store)
            for entry in manifest.objects:
                stored = await store.put_file(entry.key, workdir / object_key(entry.sha256))
                if stored.sha256 != entry.sha256:
                    raise BackupError(f"object {entry.key!r} changed while it was restored")
            db_file = workdir / Path(manifest.database.key).name
            writer = postgres.restore if dialect == "postgresql" else sqlite.restore
            await asyncio.to_thread(writer, settings, db_file)
    finally:
        await backup.close()
        await store.close()
    await _forget_caches(settings)
    needs_upgrade = manifest.schema_revision != known_revisions()[-1]
    return Restored(location=location, manifest=manifest, needs_upgrade=needs_upgrade)
