"""Where backups live: a local directory or an ``s3://bucket/prefix``, as an object store."""

from __future__ import annotations

import re
from pathlib import Path

from mlops.backup.manifest import MANIFEST_KEY, BackupError
from mlops.config import Settings
from mlops.storage import ArtifactStore, create_store

ACCEPTED = "a directory or an s3://bucket/prefix"
# One backup per folder, named by its UTC start time: names sort in time order.
_NAME_RE = re.compile(r"\d{8}-\d{6}(-\d+)?")


def open_location(location: str, settings: Settings, *, must_exist: bool) -> ArtifactStore:
    """The store at ``location``; S3 uses the platform's endpoint and the AWS environment."""
    if location.startswith("s3://"):
        try:
            return create_store(
                location.rstrip("/"),
                s3_endpoint_url=settings.s3_endpoint_url,
                s3_region=settings.s3_region,
            )
        except ValueError as exc:
            raise BackupError(f"{location!r} is not a usable S3 location: {exc}") from None
    if "://" in location:
        raise BackupError(f"{location!r}: expected {ACCEPTED}")
    path = Path(location).expanduser().resolve()
    if must_exist and not path.is_dir():
        raise BackupError(f"{location!r} is not a directory: expected {ACCEPTED}")
    if path.exists() and not path.is_dir():
        raise BackupError(f"{location!r} is a file: expected {ACCEPTED}")
    return create_store(path.as_uri())


def child(location: str, name: str) -> str:
    return f"{location.rstrip('/')}/{name}"


async def backup_names(store: ArtifactStore) -> list[str]:
    """Names of the complete backups (those with a manifest) directly under ``store``."""
    names = set()
    for key in await store.list_keys(""):
        parts = key.split("/")
        if len(parts) == 2 and parts[1] == MANIFEST_KEY and _NAME_RE.fullmatch(parts[0]):
            names.add(parts[0])
    return sorted(names)


async def find_backup(location: str, settings: Settings) -> tuple[str, ArtifactStore]:
    """The backup at ``location``, or the latest complete one under it."""
    store = open_location(location, settings, must_exist=True)
    try:
        if await store.exists(MANIFEST_KEY):
            return location, store
        names = await backup_names(store)
    finally:
        await store.close()
    if not names:
        raise BackupError(
            f"no backup at {location!r}: expected a {MANIFEST_KEY} there, or backups made "
            "by `mlops backup create` under it (an unfinished backup has no manifest)"
        )
    chosen = child(location, names[-1])
    return chosen, open_location(chosen, settings, must_exist=True)
