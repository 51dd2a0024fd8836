"""``mlops backup verify``: read a whole backup and check it against its manifest."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlops.backup import postgres, sqlite
from mlops.backup.database import DIALECT_NAMES
from mlops.backup.files import sha256_of
from mlops.backup.location import find_backup
from mlops.backup.manifest import MANIFEST_KEY, BackupError, Manifest, object_key
from mlops.backup.signature import SIGNATURE_KEY, check, signing_keys
from mlops.config import Settings
from mlops.storage import ArtifactStore, ObjectNotFound


def known_revisions() -> list[str]:
    """Every schema revision this platform version knows, oldest first."""
    from alembic.script import ScriptDirectory

    from mlops.db.schema import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def _fetch(store: ArtifactStore, key: str, dest: Path, size: int, sha256: str) -> None:
    try:
        await store.get_file(key, dest)
    except ObjectNotFound:
        raise BackupError(f"the backup is incomplete: {key!r} is missing") from None
    actual_sha, actual_size = await asyncio.to_thread(sha256_of, dest)
    if (actual_sha, actual_size) != (sha256, size):
        raise BackupError(
            f"the backup is corrupt: {key!r} has {actual_size} bytes with sha256 "
            f"{actual_sha[:12]}..., the manifest says {size} bytes with {sha256[:12]}..."
        )


def check_schema(manifest: Manifest) -> None:
    known = known_revisions()
    if manifest.schema_revision not in known:
        raise BackupError(
            f"the backup's schema revision {manifest.schema_revision!r} is newer than this "
            f"platform version knows (its latest is {known[-1]!r}): it was made by platform "
            f"{manifest.platform_version}; restore it with that version or a later one"
        )


async def _signature(store: ArtifactStore, workdir: Path) -> bytes | None:
    try:
        await store.get_file(SIGNATURE_KEY, workdir / SIGNATURE_KEY)
    except ObjectNotFound:
        return None
    return (workdir / SIGNATURE_KEY).read_bytes()


async def fetch_and_verify(store: ArtifactStore, workdir: Path, keys: Sequence[str]) -> Manifest:
    """Download the backup into ``workdir`` (database file, ``objects/<sha256>``) and
    check its manifest's signature under ``keys``, then every byte against the
    manifest; return the manifest."""
    manifest_file = workdir / MANIFEST_KEY
    try:
        await store.get_file(MANIFEST_KEY, manifest_file)
    except ObjectNotFound:
        raise BackupError(f"no {MANIFEST_KEY}: not a backup, or an unfinished one") from None
    raw = manifest_file.read_bytes()
    check(raw, await _signature(store, workdir), keys)  # before anything in it is believed
    manifest = Manifest.from_json(raw)
    if manifest.dialect not in DIALECT_NAMES:
        raise BackupError(f"the manifest names an unknown database {manifest.dialect!r}")
    check_schema(manifest)
    db = manifest.database
    db_file = workdir / Path(db.key).name
    await _fetch(store, db.key, db_file, db.size, db.sha256)
    if manifest.dialect == "postgresql":
        await asyncio.to_thread(postgres.check_archive, db_file)
    else:
        await asyncio.to_thread(sqlite.check_archive, db_file)
        inside = await asyncio.to_thread(sqlite.snapshot_of, db_file)
        if (inside.revision, inside.counts) != (manifest.schema_revision, manifest.counts):
            raise BackupError("the backup is corrupt: its database does not match the manifest")
    (workdir / "objects").mkdir(exist_ok=True)
    fetched: set[str] = set()
    for entry in manifest.objects:
        if entry.sha256 not in fetched:
            dest = workdir / object_key(entry.sha256)
            await _fetch(store, object_key(entry.sha256), dest, entry.size, entry.sha256)
            fetched.add(entry.sha256)
    by_key = {entry.key: entry.sha256 for entry in manifest.objects}
    for version in manifest.versions:
        if by_key.get(version.storage_key) != version.sha256:
            raise BackupError(
                f"the backup is inconsistent: model artifact {version.storage_key!r} is "
                "missing or differs from its version row"
            )
    return manifest


async def verify_backup(settings: Settings, source: str) -> tuple[str, Manifest]:
    """Check the backup at ``source`` (or the latest under it) without restoring it."""
    keys = signing_keys(settings)
    location, store = await find_backup(source, settings)
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-verify-") as tmp:
            return location, await fetch_and_verify(store, Path(tmp), keys)
    finally:
        await store.close()
