"""Registered models: create, list, filter, change, archive; roles."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Platform, bearer
from tests.registry.helpers import create_model, upload


async def test_create_get_and_list(registry: Platform, admin_token: str) -> None:
    created = await create_model(
        registry, admin_token, "churn", description="Churn model", tags={"team": "growth"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "churn"
    assert body["aliases"] == []
    assert body["latest_version"] is None
    await create_model(registry, admin_token, "churn-v2", tags={"team": "risk"})
    await create_model(registry, admin_token, "fraud", tags={"team": "risk"})

    listed = await registry.client.get("/api/v1/models", headers=bearer(admin_token))
    assert [m["name"] for m in listed.json()["items"]] == ["churn", "churn-v2", "fraud"]
    by_prefix = await registry.client.get(
        "/api/v1/models?prefix=churn", headers=bearer(admin_token)
    )
    assert by_prefix.json()["total"] == 2
    by_tag = await registry.client.get("/api/v1/models?tag=team:risk", headers=bearer(admin_token))
    assert [m["name"] for m in by_tag.json()["items"]] == ["churn-v2", "fraud"]
    page = await registry.client.get("/api/v1/models?limit=1&offset=1", headers=bearer(admin_token))
    assert [m["name"] for m in page.json()["items"]] == ["churn-v2"]
    assert page.json()["total"] == 3


async def test_names_are_validated(registry: Platform, admin_token: str) -> None:
    for name in ("Upper", "-dash", "a" * 64, "with space", "predict", ""):
        response = await create_model(registry, admin_token, name)
        assert response.status_code == 422, name
    duplicate = await create_model(registry, admin_token, "dup")
    assert duplicate.status_code == 201
    again = await create_model(registry, admin_token, "dup")
    assert again.status_code == 409


async def test_prefix_filter_escapes_wildcards(registry: Platform, admin_token: str) -> None:
    await create_model(registry, admin_token, "a_b")
    await create_model(registry, admin_token, "axb")
    listed = await registry.client.get("/api/v1/models?prefix=a_", headers=bearer(admin_token))
    assert [m["name"] for m in listed.json()["items"]] == ["a_b"]


async def test_update_and_archive(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "m1")
    patched = await registry.client.patch(
        "/api/v1/models/m1",
        json={"description": "new", "tags": {"k": "v"}},
        headers=bearer(admin_token),
    )
    assert patched.json()["description"] == "new"
    assert patched.json()["tags"] == {"k": "v"}
    assert (await upload(registry, admin_token, "m1", model_files["skops"])).status_code == 201
    await registry.client.put(
        "/api/v1/models/m1/aliases/production", json={"version": 1}, headers=bearer(admin_token)
    )
    refused = await registry.client.delete("/api/v1/models/m1", headers=bearer(admin_token))
    assert refused.status_code == 409
    assert "production" in refused.json()["error"]["message"]
    forced = await registry.client.delete(
        "/api/v1/models/m1?force=true", headers=bearer(admin_token)
    )
    assert forced.status_code == 204
    assert (
        await registry.client.get("/api/v1/models/m1", headers=bearer(admin_token))
    ).status_code == 404
    archived = await registry.client.get(
        "/api/v1/models?include_archived=true", headers=bearer(admin_token)
    )
    assert archived.json()["items"][0]["archived"] is True


async def test_viewer_reads_but_cannot_change(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "shared")
    await upload(registry, admin_token, "shared", model_files["skops"])
    viewer = await registry.login("vic", await registry.create_user(admin_token, "vic", "viewer"))
    editor = await registry.login("eve", await registry.create_user(admin_token, "eve", "editor"))
    assert (
        await registry.client.get("/api/v1/models/shared", headers=bearer(viewer))
    ).status_code == 200
    writes = [
        ("POST", "/api/v1/models", {"name": "new"}),
        ("PATCH", "/api/v1/models/shared", {"description": "x"}),
        ("DELETE", "/api/v1/models/shared", None),
        ("PUT", "/api/v1/models/shared/aliases/production", {"version": 1}),
        ("DELETE", "/api/v1/models/shared/versions/1", None),
        ("PUT", "/api/v1/settings/default-model", {"name": "shared"}),
    ]
    for method, path, body in writes:
        response = await registry.client.request(method, path, json=body, headers=bearer(viewer))
        assert response.status_code == 403, (method, path)
    uploaded = await upload(registry, viewer, "shared", model_files["skops"])
    assert uploaded.status_code == 403
    # Editors can change models; force-archiving and the default model are for admins.
    assert (await upload(registry, editor, "shared", model_files["onnx"])).status_code == 201
    moved = await registry.client.put(
        "/api/v1/models/shared/aliases/production", json={"version": 2}, headers=bearer(editor)
    )
    assert moved.status_code == 200
    forced = await registry.client.delete(
        "/api/v1/models/shared?force=true", headers=bearer(editor)
    )
    assert forced.status_code == 403
    default = await registry.client.put(
        "/api/v1/settings/default-model", json={"name": "shared"}, headers=bearer(editor)
    )
    assert default.status_code == 403
