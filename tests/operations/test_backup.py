"""mlops backup on both shapes: SQLite + files, PostgreSQL + S3 (SeaweedFS).

A full round trip (users, API keys, models, versions, aliases with history, a
deployment policy, the audit log: identical after restore, same predictions), every
refusal leaving the target untouched, and backups taken while versions are uploaded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops.backup.create import create_backup
from mlops.backup.location import open_location
from mlops.backup.manifest import MANIFEST_KEY, BackupError, Manifest
from mlops.backup.restore import restore_backup
from mlops.backup.signature import SIGNATURE_KEY, sign, signing_keys
from mlops.backup.verify import verify_backup
from mlops.config import Settings
from tests.conftest import Platform, bearer, start_platform
from tests.operations.journey import populate, predictions
from tests.operations.state import objects, rewrite_backup_file, rows
from tests.registry.helpers import upload

SettingsMaker = Callable[..., Settings]


async def _populated(settings: Settings, model_files: dict[str, Path]) -> dict[str, object]:
    async for platform in start_platform(settings):
        secrets = await populate(platform, model_files)
        secrets["predictions"] = await predictions(platform, await platform.login())
    return secrets


async def _resign(location: str, settings: Settings, tmp: Path) -> None:
    """Sign the backup's manifest again with the platform's signing key."""
    store = open_location(location, settings, must_exist=True)
    try:
        manifest, signature = tmp / "manifest", tmp / "signature"
        await store.get_file(MANIFEST_KEY, manifest)
        signature.write_bytes(sign(manifest.read_bytes(), signing_keys(settings)[0]))
        await store.put_file(SIGNATURE_KEY, signature)
    finally:
        await store.close()


async def test_round_trip_restores_everything(
    ops_settings: SettingsMaker,
    backup_location: str,
    fresh_target: Callable[[], Settings],
    model_files: dict[str, Path],
) -> None:
    settings = ops_settings()
    secrets = await _populated(settings, model_files)
    before_rows, before_objects = rows(settings), await objects(settings)
    assert (
        before_rows["alias_events"] and before_rows["audit_events"] and before_rows["deployments"]
    )

    location, manifest = await create_backup(settings, backup_location)
    assert manifest.counts["model_versions"] == 2 and manifest.counts["users"] == 2
    assert {o.key for o in manifest.objects} == set(before_objects)
    assert any(key.startswith("datasets/") for key in before_objects), before_objects
    assert (await verify_backup(settings, backup_location))[0] == location

    target = fresh_target()
    restored = await restore_backup(target, backup_location)  # the latest under the prefix
    assert restored.location == location and not restored.needs_upgrade
    assert rows(target) == before_rows
    assert await objects(target) == before_objects

    async for platform in start_platform(target):
        login = await platform.client.post(
            "/api/v1/auth/login", json={"username": "ana", "password": secrets["ana_password"]}
        )
        assert login.status_code == 200, login.text
        me = await platform.client.get("/api/v1/users/me", headers=bearer(str(secrets["api_key"])))
        assert me.status_code == 200 and me.json()["authenticated_via"] == "api_key", me.text
        assert await predictions(platform, await platform.login()) == secrets["predictions"]
        model = await platform.client.get(
            "/api/v1/models/churn", headers=bearer(await platform.login())
        )
        assert model.status_code == 200, model.text
        aliases = {a["name"]: a["version"] for a in model.json()["aliases"]}
        assert aliases == {"production": 1}, model.text


async def test_refusals_change_nothing(
    ops_settings: SettingsMaker,
    backup_location: str,
    fresh_target: Callable[[], Settings],
    model_files: dict[str, Path],
    tmp_path: Path,
    backend: str,
) -> None:
    settings = ops_settings()
    await _populated(settings, model_files)
    location, manifest = await create_backup(settings, backup_location)
    backed_up = rows(settings)

    # A non-empty target without --force: refused, unchanged.
    async for platform in start_platform(settings):
        await platform.create_user(await platform.login(), "late", "viewer")
    changed = rows(settings)
    with pytest.raises(BackupError, match="not empty.*--force"):
        await restore_backup(settings, location)
    assert rows(settings) == changed
    # With --force it is replaced by the backup's state.
    await restore_backup(settings, location, force=True)
    after = rows(settings)
    backed_up.pop("platform_settings"), after.pop("platform_settings")  # the success mark
    assert after == backed_up

    # The other database shape: refused before anything is read from the target.
    if backend == "postgres":
        other = ops_settings(database_url=None, redis_url=None, data_dir=tmp_path / "other")
        shape = "PostgreSQL database and the settings name SQLite"
    else:
        other = ops_settings(database_url="postgresql://postgres@127.0.0.1:1/none")
        shape = "SQLite database and the settings name PostgreSQL"
    with pytest.raises(BackupError, match=shape):
        await restore_backup(other, location)

    target = fresh_target()

    async def untouched() -> None:
        assert await objects(target) == {}

    # A newer schema than this code knows.
    original = b""

    def future(raw: bytes) -> bytes:
        nonlocal original
        original = raw
        data = json.loads(raw)
        data["schema_revision"] = "9999_from_the_future"
        return json.dumps(data).encode()

    # Signed, as the newer platform that made it would have: only the schema is refused.
    await rewrite_backup_file(location, settings, MANIFEST_KEY, tmp_path, future)
    await _resign(location, settings, tmp_path)
    with pytest.raises(BackupError, match="newer than this platform version knows"):
        await restore_backup(target, location)
    await untouched()
    await rewrite_backup_file(location, settings, MANIFEST_KEY, tmp_path, lambda _: original)
    await _resign(location, settings, tmp_path)

    # A corrupt database file and a corrupt object: verify and restore both refuse.
    def flip(raw: bytes) -> bytes:
        middle = len(raw) // 2
        return raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :]

    for key in (manifest.database.key, f"objects/{manifest.objects[0].sha256}"):
        await rewrite_backup_file(location, settings, key, tmp_path, flip)
        with pytest.raises(BackupError, match="corrupt"):
            await verify_backup(settings, location)
        with pytest.raises(BackupError, match="corrupt"):
            await restore_backup(target, location)
        await untouched()
        await rewrite_backup_file(location, settings, key, tmp_path, flip)  # flipped back
    await verify_backup(settings, location)

    # An unfinished backup (no manifest): never restored.
    store = open_location(location, settings, must_exist=True)
    await store.delete(MANIFEST_KEY)
    await store.close()
    with pytest.raises(BackupError, match="no backup at"):
        await restore_backup(target, location)
    await untouched()
    if backend != "postgres":
        assert not (target.data_dir / "mlops.db").exists()


async def _keep_uploading(platform: Platform, token: str, path: Path, stop: asyncio.Event) -> int:
    done = 0
    while not stop.is_set():
        response = await upload(platform, token, "churn", path)
        assert response.status_code == 201, response.text
        done += 1
    return done


async def test_backup_during_uploads_is_consistent(
    ops_settings: SettingsMaker,
    backup_location: str,
    fresh_target: Callable[[], Settings],
    model_files: dict[str, Path],
) -> None:
    settings = ops_settings()
    backups: list[tuple[str, Manifest]] = []
    async for platform in start_platform(settings):
        await populate(platform, model_files)
        token = await platform.login()
        stop = asyncio.Event()

        uploader = asyncio.create_task(_keep_uploading(platform, token, model_files["onnx"], stop))
        try:
            for _ in range(3):
                backups.append(await create_backup(settings, backup_location))
        finally:
            stop.set()
            uploaded = await uploader
        assert uploaded >= 1
    for location, _ in backups:
        _, checked = await verify_backup(settings, location)  # each row has its artifact
        keys = {o.key for o in checked.objects}
        assert all(v.storage_key in keys for v in checked.versions)
        assert checked.counts["model_versions"] == len(checked.versions)
    target = fresh_target()
    last_location, last = backups[-1]
    await restore_backup(target, last_location)
    async for platform in start_platform(target):
        token = await platform.login()
        for version in range(1, last.counts["model_versions"] + 1):
            response = await platform.client.post(
                f"/api/v1/models/churn/predict?version={version}",
                json={"data": [[0.0] * 5]},
                headers=bearer(token),
            )
            assert response.status_code == 200, (version, response.text)


async def test_last_success_reaches_metrics(
    ops_settings: SettingsMaker, backup_location: str
) -> None:
    settings = ops_settings()
    async for platform in start_platform(settings):
        scraped = await platform.client.get("/metrics")
        assert "mlops_backup_last_success_timestamp_seconds 0.0" in scraped.text
    await create_backup(settings, backup_location)
    recorded = rows(settings)["platform_settings"]
    value = next(row[1] for row in recorded if row[0] == "backup.last_success")
    async for platform in start_platform(settings):
        scraped = await platform.client.get("/metrics")
        line = next(
            text
            for text in scraped.text.splitlines()
            if text.startswith("mlops_backup_last_success_timestamp_seconds ")
        )
        assert float(line.split()[1]) == pytest.approx(float(value), abs=0.001)
