"""Versions: validated uploads, refusals that leave nothing, downloads, immutability."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Platform, bearer, start_platform
from tests.registry.helpers import create_model, row_counts, stored_keys, upload

METADATA = {
    "description": "first cut",
    "tags": {"stage": "dev"},
    "metrics": {"auc": 0.91},
    "params": {"C": 1.0, "solver": "lbfgs"},
    "source_uri": "s3://training/run-7",
    "git_commit": "0123abcd",
    "dataset_sha256": "a" * 64,
    "run_id": "run-7",
}


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [("skops", "skops"), ("onnx", "onnx"), ("xgboost", "xgboost"), ("lightgbm", "lightgbm")],
)
async def test_each_safe_format_becomes_a_ready_version(
    registry: Platform, admin_token: str, model_files: dict[str, Path], kind: str, fmt: str
) -> None:
    await create_model(registry, admin_token, "clf")
    response = await upload(registry, admin_token, "clf", model_files[kind], METADATA)
    assert response.status_code == 201, response.text
    version = response.json()
    data = model_files[kind].read_bytes()
    assert version["version"] == 1
    assert version["status"] == "ready"
    assert version["format"] == fmt
    assert version["sha256"] == hashlib.sha256(data).hexdigest()
    assert version["size"] == len(data)
    assert version["signature"]["n_features"] == 5
    assert version["signature"]["output_kind"] == "class_labels"
    assert version["created_by"] == "admin"
    assert version["metrics"] == {"auc": 0.91}
    assert version["lineage"]["run_id"] == "run-7"
    assert version["created_at"]

    download = await registry.client.get(
        "/api/v1/models/clf/versions/1/artifact", headers=bearer(admin_token)
    )
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["X-Artifact-SHA256"] == version["sha256"]


REFUSALS = [
    ("pickle", 400, "unsafe_format"),
    ("joblib", 400, "unsafe_format"),
    ("pickle_as_onnx", 400, None),
    ("corrupt_onnx", 422, "model_invalid"),
    ("external_onnx", 400, None),
    ("skops_untrusted", 400, "untrusted_types"),
    ("empty", 400, "empty_file"),
]


@pytest.mark.parametrize(("kind", "status", "code"), REFUSALS)
async def test_refused_uploads_leave_nothing_behind(
    registry: Platform,
    admin_token: str,
    model_files: dict[str, Path],
    kind: str,
    status: int,
    code: str | None,
) -> None:
    await create_model(registry, admin_token, "clf")
    before = await row_counts(registry), await stored_keys(registry)
    response = await upload(registry, admin_token, "clf", model_files[kind])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if code:
        assert error["code"] == code
    assert len(error["message"]) > 20
    assert (await row_counts(registry), await stored_keys(registry)) == before
    leftovers = list((registry.settings.data_dir / "tmp").glob("*"))
    assert leftovers == []


async def test_pickle_refusal_explains_how_to_convert(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "clf")
    response = await upload(registry, admin_token, "clf", model_files["pickle"])
    message = response.json()["error"]["message"]
    assert "mlops models convert" in message


async def test_oversize_upload_is_413_and_leaves_nothing(
    registry_settings: Any, model_files: dict[str, Path]
) -> None:
    async for platform in start_platform(registry_settings(max_upload_bytes=2048)):
        token = await platform.login()
        await create_model(platform, token, "clf")
        response = await upload(platform, token, "clf", model_files["skops"])
        assert response.status_code == 413
        assert await row_counts(platform) == (1, 0)
        assert await stored_keys(platform) == []


async def test_bad_uploads_get_clear_errors(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "clf")
    not_multipart = await registry.client.post(
        "/api/v1/models/clf/versions", json={"file": "x"}, headers=bearer(admin_token)
    )
    assert not_multipart.status_code == 400
    assert not_multipart.json()["error"]["code"] == "expected_multipart"
    bad_json = await upload(registry, admin_token, "clf", model_files["skops"], "{not json")
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "invalid_metadata"
    bad_field = await upload(
        registry, admin_token, "clf", model_files["skops"], {"git_commit": "not-hex!"}
    )
    assert bad_field.status_code == 422
    assert "git_commit" in bad_field.json()["error"]["message"]
    unknown_model = await upload(registry, admin_token, "nope", model_files["skops"])
    assert unknown_model.status_code == 404
    assert await row_counts(registry) == (1, 0)
    assert await stored_keys(registry) == []


async def test_versions_are_immutable_but_for_description_and_tags(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "clf")
    await upload(registry, admin_token, "clf", model_files["skops"], METADATA)
    patched = await registry.client.patch(
        "/api/v1/models/clf/versions/1",
        json={"description": "better words", "tags": {"stage": "qa"}},
        headers=bearer(admin_token),
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "better words"
    for body in ({"sha256": "0" * 64}, {"metrics": {"auc": 1.0}}, {"format": "onnx"}):
        refused = await registry.client.patch(
            "/api/v1/models/clf/versions/1", json=body, headers=bearer(admin_token)
        )
        assert refused.status_code == 422
    again = await registry.client.get("/api/v1/models/clf/versions/1", headers=bearer(admin_token))
    assert again.json()["metrics"] == {"auc": 0.91}


async def test_archiving_a_version(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "clf")
    for kind in ("skops", "onnx"):
        await upload(registry, admin_token, "clf", model_files[kind])
    await registry.client.put(
        "/api/v1/models/clf/aliases/production", json={"version": 2}, headers=bearer(admin_token)
    )
    refused = await registry.client.delete(
        "/api/v1/models/clf/versions/2", headers=bearer(admin_token)
    )
    assert refused.status_code == 409
    assert (
        await registry.client.delete("/api/v1/models/clf/versions/1", headers=bearer(admin_token))
    ).status_code == 204
    listed = await registry.client.get("/api/v1/models/clf/versions", headers=bearer(admin_token))
    assert [v["version"] for v in listed.json()["items"]] == [2]
    everything = await registry.client.get(
        "/api/v1/models/clf/versions?include_archived=true", headers=bearer(admin_token)
    )
    assert [v["status"] for v in everything.json()["items"]] == ["archived", "ready"]
    # An archived version cannot be released.
    release = await registry.client.put(
        "/api/v1/models/clf/aliases/staging", json={"version": 1}, headers=bearer(admin_token)
    )
    assert release.status_code == 409


async def test_concurrent_uploads_get_distinct_consecutive_versions(
    registry: Platform, admin_token: str, model_files: dict[str, Path], backend: str
) -> None:
    await create_model(registry, admin_token, "busy")
    count = 20 if backend == "postgres" else 8
    responses = await asyncio.gather(
        *(upload(registry, admin_token, "busy", model_files["onnx"]) for _ in range(count))
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(1, count + 1))
    assert len(await stored_keys(registry)) == count


async def test_version_says_which_runtime_serves_it(
    registry: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await create_model(registry, admin_token, "clf")
    for kind in ("skops", "xgboost", "lightgbm", "onnx"):
        version = (await upload(registry, admin_token, "clf", model_files[kind])).json()
        # Each of these converts to ONNX with the same answers, so onnxruntime serves it.
        assert version["runtime"]["serving_runtime"] == "onnxruntime", kind


async def test_versions_come_a_page_at_a_time(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    assert (await create_model(platform, admin_token, "paged")).status_code == 201
    for _ in range(3):
        uploaded = await upload(platform, admin_token, "paged", model_files["onnx"])
        assert uploaded.status_code == 201, uploaded.text
    page = await platform.client.get(
        "/api/v1/models/paged/versions?limit=2&offset=1", headers=bearer(admin_token)
    )
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 1)
    assert [v["version"] for v in body["items"]] == [2, 3]
    too_many = await platform.client.get(
        "/api/v1/models/paged/versions?limit=501", headers=bearer(admin_token)
    )
    assert too_many.status_code == 422
