"""Aliases: release, history, rollback; the default model; the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import Platform, bearer
from tests.registry.helpers import create_model, upload


async def _three_versions(registry: Platform, token: str, files: dict[str, Path]) -> None:
    await create_model(registry, token, "clf")
    for kind in ("skops", "onnx", "xgboost"):
        assert (await upload(registry, token, "clf", files[kind])).status_code == 201


async def _put(registry: Platform, token: str, alias: str, version: int) -> dict[str, object]:
    response = await registry.client.put(
        f"/api/v1/models/clf/aliases/{alias}", json={"version": version}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_alias_moves_show_on_the_model(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await _three_versions(registry, admin_token, model_files)
    first = await _put(registry, admin_token, "production", 1)
    assert first["previous_version"] is None
    second = await _put(registry, admin_token, "production", 2)
    assert second["previous_version"] == 1
    await _put(registry, admin_token, "staging", 3)
    model = (await registry.client.get("/api/v1/models/clf", headers=bearer(admin_token))).json()
    assert {a["name"]: a["version"] for a in model["aliases"]} == {"production": 2, "staging": 3}
    version = await registry.client.get(
        "/api/v1/models/clf/versions/2", headers=bearer(admin_token)
    )
    assert version.json()["aliases"] == ["production"]


async def test_rollback_goes_back_one_release_at_a_time(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await _three_versions(registry, admin_token, model_files)
    for version in (1, 2, 3):
        await _put(registry, admin_token, "production", version)
    rollback = "/api/v1/models/clf/aliases/production/rollback"
    back = await registry.client.post(rollback, headers=bearer(admin_token))
    assert back.status_code == 200
    assert back.json()["version"] == 2
    assert back.json()["previous_version"] == 3
    again = await registry.client.post(rollback, headers=bearer(admin_token))
    assert again.json()["version"] == 1
    none_left = await registry.client.post(rollback, headers=bearer(admin_token))
    assert none_left.status_code == 409
    assert none_left.json()["error"]["code"] == "nothing_to_roll_back"

    history = await registry.client.get(
        "/api/v1/models/clf/aliases/production/history", headers=bearer(admin_token)
    )
    body = history.json()
    assert body["current_version"] == 1
    moves = [(e["action"], e["from_version"], e["to_version"]) for e in body["events"]]
    assert moves == [
        ("set", None, 1), ("set", 1, 2), ("set", 2, 3), ("rollback", 3, 2), ("rollback", 2, 1),
    ]  # fmt: skip
    assert all(e["actor"] == "admin" and e["at"] for e in body["events"])
    assert body["total"] == 5
    later = await registry.client.get(
        "/api/v1/models/clf/aliases/production/history?limit=2&offset=3",
        headers=bearer(admin_token),
    )
    assert [e["action"] for e in later.json()["events"]] == ["rollback", "rollback"]
    assert (later.json()["total"], later.json()["limit"], later.json()["offset"]) == (5, 2, 3)


async def test_alias_errors(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await _three_versions(registry, admin_token, model_files)
    missing_version = await registry.client.put(
        "/api/v1/models/clf/aliases/production", json={"version": 9}, headers=bearer(admin_token)
    )
    assert missing_version.status_code == 404
    assert missing_version.json()["error"]["code"] == "version_not_found"
    bad_name = await registry.client.put(
        "/api/v1/models/clf/aliases/Prod!", json={"version": 1}, headers=bearer(admin_token)
    )
    assert bad_name.status_code == 422
    assert bad_name.json()["error"]["code"] == "validation_error"
    bad_body = await registry.client.put(
        "/api/v1/models/clf/aliases/production",
        json={"version": "one"},
        headers=bearer(admin_token),
    )
    assert bad_body.status_code == 422
    assert bad_body.json()["error"]["code"] == "validation_error"
    no_alias = await registry.client.post(
        "/api/v1/models/clf/aliases/champion/rollback", headers=bearer(admin_token)
    )
    assert no_alias.status_code == 404
    assert no_alias.json()["error"]["code"] == "alias_not_found"
    await _put(registry, admin_token, "champion", 1)
    deleted = await registry.client.delete(
        "/api/v1/models/clf/aliases/champion", headers=bearer(admin_token)
    )
    assert deleted.status_code == 204
    model = (await registry.client.get("/api/v1/models/clf", headers=bearer(admin_token))).json()
    assert model["aliases"] == []


async def test_default_model(registry: Platform, admin_token: str) -> None:
    unset = await registry.client.get("/api/v1/settings/default-model", headers=bearer(admin_token))
    assert unset.json() == {"name": None, "source": "unset"}
    missing = await registry.client.put(
        "/api/v1/settings/default-model", json={"name": "ghost"}, headers=bearer(admin_token)
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    await create_model(registry, admin_token, "clf")
    done = await registry.client.put(
        "/api/v1/settings/default-model", json={"name": "clf"}, headers=bearer(admin_token)
    )
    assert done.json() == {"name": "clf", "source": "api"}


async def test_default_model_from_the_environment(registry_settings: object) -> None:
    from tests.conftest import start_platform

    async for platform in start_platform(registry_settings(default_model="envmodel")):  # type: ignore[operator]
        token = await platform.login()
        body = (
            await platform.client.get("/api/v1/settings/default-model", headers=bearer(token))
        ).json()
        assert body == {"name": "envmodel", "source": "environment"}


async def test_every_change_is_audited(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await registry.create_user(admin_token, "ed", "editor")
    await _three_versions(registry, admin_token, model_files)
    await registry.client.patch(
        "/api/v1/models/clf/versions/1", json={"description": "x"}, headers=bearer(admin_token)
    )
    await _put(registry, admin_token, "production", 1)
    await _put(registry, admin_token, "production", 2)
    await registry.client.post(
        "/api/v1/models/clf/aliases/production/rollback", headers=bearer(admin_token)
    )
    await registry.client.delete("/api/v1/models/clf/versions/3", headers=bearer(admin_token))
    await registry.client.put(
        "/api/v1/settings/default-model", json={"name": "clf"}, headers=bearer(admin_token)
    )
    await registry.client.post("/api/v1/api-keys", json={"name": "ci"}, headers=bearer(admin_token))
    log = await registry.client.get("/api/v1/audit?limit=1000", headers=bearer(admin_token))
    assert log.status_code == 200
    actions = [e["action"] for e in reversed(log.json()["items"])]
    for expected in (
        "user.created", "model.created", "version.created", "version.updated", "alias.moved",
        "alias.rolled_back", "version.archived", "settings.default_model", "api_key.created",
    ):  # fmt: skip
        assert expected in actions, expected
    rollback = next(e for e in log.json()["items"] if e["action"] == "alias.rolled_back")
    assert rollback["before"] == {"version": 2}
    assert rollback["after"] == {"version": 1}
    assert rollback["actor"] == "admin"
    assert rollback["target"] == "model:clf@production"

    by_target = await registry.client.get(
        "/api/v1/audit?target=model:clf@", headers=bearer(admin_token)
    )
    assert {e["action"] for e in by_target.json()["items"]} == {"alias.moved", "alias.rolled_back"}
    by_actor = await registry.client.get("/api/v1/audit?actor=nobody", headers=bearer(admin_token))
    assert by_actor.json()["total"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = await registry.client.get(
        "/api/v1/audit", params={"since": future}, headers=bearer(admin_token)
    )
    assert later.json()["items"] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    swapped = await registry.client.get(
        "/api/v1/audit", params={"since": future, "until": past}, headers=bearer(admin_token)
    )
    assert swapped.status_code == 422
    assert "is after until" in swapped.json()["error"]["message"]

    editor = await registry.login("ed", "ed-Passphrase-42")
    denied = await registry.client.get("/api/v1/audit", headers=bearer(editor))
    assert denied.status_code == 403


async def test_demo_model_is_registered_released_and_default(
    registry: Platform, admin_token: str
) -> None:
    from mlops.registry.demo import register_demo_model

    assert await register_demo_model(registry.ctx)
    assert not await register_demo_model(registry.ctx)  # idempotent
    model = (await registry.client.get("/api/v1/models/demo", headers=bearer(admin_token))).json()
    assert model["aliases"][0]["name"] == "production"
    assert model["aliases"][0]["version"] == 1
    version = (
        await registry.client.get("/api/v1/models/demo/versions/1", headers=bearer(admin_token))
    ).json()
    assert version["signature"]["n_features"] == 5
    assert version["format"] == "skops"
    default = await registry.client.get(
        "/api/v1/settings/default-model", headers=bearer(admin_token)
    )
    assert default.json()["name"] == "demo"
