"""Put a platform in a state worth backing up, through its API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Platform, bearer
from tests.registry.helpers import create_model, upload

ROWS = [[0.5, -1.0, 2.0, 0.0, 1.5], [-2.0, 0.3, 0.1, 1.0, -0.7]]


async def populate(platform: Platform, model_files: dict[str, Path]) -> dict[str, Any]:
    """Users, an API key, a model with two versions, an alias with history, a
    deployment policy (all audited), an uploaded data set; returns the secrets needed
    to use them again."""
    token = await platform.login()
    ana_password = await platform.create_user(token, "ana", "editor")
    key = await platform.client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "viewer"}, headers=bearer(token)
    )
    assert key.status_code == 201, key.text
    assert (await create_model(platform, token, "churn")).status_code == 201
    for name in ("onnx", "lightgbm"):
        response = await upload(platform, token, "churn", model_files[name])
        assert response.status_code == 201, response.text
    for version in (1, 2):
        moved = await platform.client.put(
            "/api/v1/models/churn/aliases/production",
            json={"version": version},
            headers=bearer(token),
        )
        assert moved.status_code == 200, moved.text
    back = await platform.client.post(
        "/api/v1/models/churn/aliases/production/rollback", headers=bearer(token)
    )
    assert back.status_code == 200, back.text
    policy = await platform.client.put(
        "/api/v1/models/churn/deployment",
        json={"canary": {"version": 2, "percent": 10}},
        headers=bearer(token),
    )
    assert policy.status_code == 200, policy.text
    data = "\n".join(["a,b,c,d,e", *(",".join(map(str, row)) for row in ROWS)]) + "\n"
    dataset = await platform.client.post(
        "/api/v1/datasets",
        files={"file": ("customers.csv", data.encode(), "text/csv")},
        headers=bearer(token),
    )
    assert dataset.status_code == 201, dataset.text
    return {"ana_password": ana_password, "api_key": key.json()["key"]}


async def predictions(platform: Platform, credential: str) -> dict[int, Any]:
    """Each version's answer to the same rows."""
    found = {}
    for version in (1, 2):
        response = await platform.client.post(
            f"/api/v1/models/churn/predict?version={version}",
            json={"data": ROWS},
            headers=bearer(credential),
        )
        assert response.status_code == 200, response.text
        found[version] = response.json()["predictions"]
    return found
