"""``mlops backup create``: the database first, then the objects it refers to.

Consistent during writes: a version's artifact is stored before its row commits
(registry/versions.py), so every version row in the database snapshot already has
its object in the store when the objects are copied afterwards. Objects that appear
later are copied too and are harmless; the manifest's signature (signature.py), then
the manifest, are written last.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from mlops import __version__
from mlops.backup import postgres, sqlite
from mlops.backup.database import DIALECT_NAMES, Snapshot, dialect_of
from mlops.backup.files import sha256_of
from mlops.backup.location import child, open_location
from mlops.backup.manifest import (
    MANIFEST_KEY,
    BackupError,
    Manifest,
    ObjectEntry,
    StoredFile,
    object_key,
)
from mlops.backup.signature import SIGNATURE_KEY, sign, signing_keys
from mlops.backup.status import record_success, utcnow
from mlops.config import Settings
from mlops.context import create_artifact_store
from mlops.storage import ArtifactStore, ObjectNotFound

DATABASE_KEYS = {"postgresql": "database.dump", "sqlite": "database.sqlite"}
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


async def _new_name(root: ArtifactStore, now: datetime) -> str:
    base = now.strftime("%Y%m%d-%H%M%S")
    name, n = base, 1
    while await root.list_keys(f"{name}/"):
        n += 1
        name = f"{base}-{n}"
    return name


async def _copy_objects(
    source: ArtifactStore, target: ArtifactStore, workdir: Path, progress: Progress
) -> list[ObjectEntry]:
    entries: list[ObjectEntry] = []
    copied: set[str] = set()
    scratch = workdir / "object"
    for key in await source.list_keys(""):
        try:
            await source.get_file(key, scratch)
        except ObjectNotFound:
            continue  # removed since the listing (a job's scratch file): not platform state
        sha256, size = await asyncio.to_thread(sha256_of, scratch)
        if sha256 not in copied:
            stored = await target.put_file(object_key(sha256), scratch)
            if stored.sha256 != sha256:
                raise BackupError(f"object {key!r} changed while it was copied; run again")
            copied.add(sha256)
        entries.append(ObjectEntry(key=key, size=size, sha256=sha256))
        scratch.unlink()
        progress(f"object {key} ({size} bytes)")
    return entries


def _check_versions(snapshot: Snapshot, objects: list[ObjectEntry]) -> None:
    by_key = {entry.key: entry.sha256 for entry in objects}
    broken = [v.storage_key for v in snapshot.versions if by_key.get(v.storage_key) != v.sha256]
    if broken:
        raise BackupError(
            f"{len(broken)} model version(s) have no artifact with their recorded sha256 in "
            f"the artifact store (first: {broken[0]!r}); the backup was not completed. "
            "Check MLOPS_ARTIFACT_STORE and the store's contents"
        )


async def create_backup(
    settings: Settings,
    dest: str,
    *,
    now: datetime | None = None,
    progress: Progress = _quiet,
) -> tuple[str, Manifest]:
    """Back up the platform the settings name into a new folder under ``dest``."""
    dialect = dialect_of(settings)
    key = signing_keys(settings)[0]  # before any work: no key, no backup
    started = now or utcnow()
    root = open_location(dest, settings, must_exist=False)
    try:
        name = await _new_name(root, started)
    finally:
        await root.close()
    location = child(dest, name)
    source = create_artifact_store(settings)
    target = open_location(location, settings, must_exist=False)
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-backup-") as tmp:
            workdir = Path(tmp)
            db_file = workdir / DATABASE_KEYS[dialect]
            dumper = postgres.dump if dialect == "postgresql" else sqlite.dump
            snapshot = await asyncio.to_thread(dumper, settings, db_file)
            if not snapshot.revision:
                raise BackupError(
                    f"the {DIALECT_NAMES[dialect]} database has no platform schema: "
                    "check the settings, or run `mlops db upgrade` first"
                )
            progress(f"database snapshot at schema {snapshot.revision}")
            objects = await _copy_objects(source, target, workdir, progress)
            _check_versions(snapshot, objects)
            stored_db = await target.put_file(DATABASE_KEYS[dialect], db_file)
            manifest = Manifest(
                platform_version=__version__,
                created_at=started.isoformat(),
                dialect=dialect,
                schema_revision=snapshot.revision,
                database=StoredFile(stored_db.key, stored_db.size, stored_db.sha256),
                counts=snapshot.counts,
                objects=objects,
                versions=snapshot.versions,
            )
            raw = manifest.to_json()
            signature_file = workdir / SIGNATURE_KEY
            signature_file.write_bytes(sign(raw, key))
            await target.put_file(SIGNATURE_KEY, signature_file)
            manifest_file = workdir / MANIFEST_KEY
            manifest_file.write_bytes(raw)
            await target.put_file(MANIFEST_KEY, manifest_file)
    finally:
        await source.close()
        await target.close()
    await record_success(settings, utcnow())
    return location, manifest
