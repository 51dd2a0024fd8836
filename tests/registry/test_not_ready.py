"""An archived version takes no traffic: neither an alias nor a deployment may point at
it (409 version_not_ready, saying which version and why)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Platform, bearer
from tests.serving.conftest import release


async def test_an_archived_version_cannot_be_released(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "m", [model_files["onnx"], model_files["skops"]])
    auth = bearer(admin_token)
    archived = await platform.client.delete("/api/v1/models/m/versions/2", headers=auth)
    assert archived.status_code == 204, archived.text
    for method, path, body in (
        ("PUT", "/api/v1/models/m/aliases/production", {"version": 2}),
        ("PUT", "/api/v1/models/m/aliases/staging", {"version": 2}),
        ("PUT", "/api/v1/models/m/deployment", {"canary": {"version": 2, "percent": 10}}),
        ("PUT", "/api/v1/models/m/deployment", {"shadow": {"version": 2}}),
    ):
        response = await platform.client.request(method, path, json=body, headers=auth)
        assert response.status_code == 409, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == "version_not_ready", (path, body)
        assert "version 2 of 'm' is archived" in error["message"]
    model = (await platform.client.get("/api/v1/models/m", headers=auth)).json()
    assert {a["name"]: a["version"] for a in model["aliases"]} == {"production": 1}
