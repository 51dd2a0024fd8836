"""Signed backup manifests: a manifest changed after the backup, or without its
signature, is refused by verify and restore with nothing changed; a backup signed
before a key rotation restores with the old key set as MLOPS_SECRET_KEY_PREVIOUS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError, ProgrammingError

from mlops.backup.create import create_backup
from mlops.backup.location import open_location
from mlops.backup.manifest import MANIFEST_KEY, BackupError
from mlops.backup.restore import restore_backup
from mlops.backup.signature import SIGNATURE_KEY
from mlops.backup.verify import verify_backup
from mlops.config import Settings
from tests.conftest import SECRET_KEY
from tests.operations.state import objects, rewrite_backup_file, rows

SettingsMaker = Callable[..., Settings]
NEW = "n" * 40 + "-the-new-signing-key"


def rows_or_none(settings: Settings) -> object:
    """The platform's rows, or None for a database without the platform's tables."""
    try:
        return rows(settings)
    except (OperationalError, ProgrammingError):
        return None


async def _refused(settings: Settings, target: Settings, location: str, match: str) -> None:
    """verify (with ``settings``) and restore (into the empty ``target``, even with
    --force) refuse, and the target is left as it was."""
    with pytest.raises(BackupError, match=match):
        await verify_backup(settings, location)
    with pytest.raises(BackupError, match=match):
        await restore_backup(target, location, force=True)
    assert await objects(target) == {}
    if target.database_url is None:
        assert not (target.data_dir / "mlops.db").exists()
    else:
        assert rows_or_none(target) is None


async def test_a_tampered_or_unsigned_manifest_is_refused(
    ops_settings: SettingsMaker,
    backup_location: str,
    fresh_target: Callable[[], Settings],
    tmp_path: Path,
) -> None:
    settings = ops_settings()
    location, _ = await create_backup(settings, backup_location)
    target = fresh_target()
    original = b""

    def plant(raw: bytes) -> bytes:
        """What an attacker with write access to the bucket would do: point the manifest
        at their own objects (here: say a user more was backed up)."""
        nonlocal original
        original = raw
        data = json.loads(raw)
        data["counts"]["users"] += 1
        return json.dumps(data, indent=2, sort_keys=True).encode()

    await rewrite_backup_file(location, settings, MANIFEST_KEY, tmp_path, plant)
    await _refused(settings, target, location, "altered after the backup was made")
    await rewrite_backup_file(location, settings, MANIFEST_KEY, tmp_path, lambda _: original)
    await verify_backup(settings, location)

    store = open_location(location, settings, must_exist=True)
    try:
        await store.delete(SIGNATURE_KEY)
    finally:
        await store.close()
    await _refused(settings, target, location, f"is not signed \\(no {SIGNATURE_KEY}\\)")


async def test_a_backup_from_before_a_key_rotation_restores_with_the_previous_key(
    ops_settings: SettingsMaker,
    backup_location: str,
    fresh_target: Callable[[], Settings],
) -> None:
    old = ops_settings()
    location, manifest = await create_backup(old, backup_location)
    target = fresh_target()
    rotated = target.model_copy(update={"secret_key": SecretStr(NEW)})
    await _refused(rotated, rotated, location, "signed with another key")
    with_previous = rotated.model_copy(update={"secret_key_previous": SecretStr(SECRET_KEY)})
    assert (await verify_backup(with_previous, location))[0] == location
    restored = await restore_backup(with_previous, location)
    assert restored.manifest.counts == manifest.counts
    # A backup made now is signed with the new key alone.
    again, _ = await create_backup(with_previous, backup_location)
    await _refused(old, fresh_target(), again, "signed with another key")
