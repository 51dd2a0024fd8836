"""What the OpenAPI document promises, checked on the server's answers: the error shape,
405's ``Allow`` header, date-times that are date-times, reserved names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Platform, bearer

pytestmark = pytest.mark.usefixtures("platform")
NOT_READY = {"/ready": "Readiness", "/v2/health/ready": "ServerReady"}


async def _openapi(platform: Platform) -> dict[str, Any]:
    response = await platform.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_error_answer_is_documented_with_the_error_schema(platform: Platform) -> None:
    document = await _openapi(platform)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                schema = response["content"]["application/json"]["schema"]
                expected = "OipError" if path.startswith("/v2") else "ErrorBody"
                # Readiness probes answer 503 with their own body.
                expected = NOT_READY.get(path, expected)
                refs = [schema.get("$ref", "")] + [s["$ref"] for s in schema.get("anyOf", [])]
                assert any(ref.endswith(f"/{expected}") for ref in refs), (
                    f"{method.upper()} {path} documents {status} without the {expected} schema"
                )


async def test_routes_that_take_a_token_document_401_and_503(platform: Platform) -> None:
    document = await _openapi(platform)
    public = {"/health", "/ready", "/v2", "/v2/health/live", "/v2/health/ready"}
    for path, operations in document["paths"].items():
        if path in public:
            continue
        for method, operation in operations.items():
            missing = {"401", "503"} - set(operation["responses"])
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # Starlette named only the first route that matched the path: "GET".
        ("PUT", "/api/v1/models/demo", "DELETE, GET, PATCH"),
        ("POST", "/api/v1/models/demo/versions/1", "DELETE, GET, PATCH"),
        ("DELETE", "/api/v1/users", "GET, POST"),
        # Literal paths that a template also matches: only their own methods.
        ("PATCH", "/api/v1/users/me", "GET"),
        ("GET", "/api/v1/models/predict", "POST"),
        ("DELETE", "/api/v1/models/predict", "POST"),
    ],
)
async def test_405_allow_lists_the_documented_methods_of_the_path(
    platform: Platform, admin_token: str, method: str, path: str, allow: str
) -> None:
    response = await platform.client.request(method, path, headers=bearer(admin_token))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == f"{method} is not allowed here; use {allow}"


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-3", "1e9"])
async def test_audit_log_refuses_a_number_for_a_date_time(
    platform: Platform, admin_token: str, value: str
) -> None:
    for name in ("since", "until"):
        response = await platform.client.get(
            "/api/v1/audit", params={name: value}, headers=bearer(admin_token)
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["field"] == name
        assert "ISO 8601" in error["message"] and "not a number" in error["message"]


async def test_audit_log_takes_an_iso_date_time(platform: Platform, admin_token: str) -> None:
    response = await platform.client.get(
        "/api/v1/audit",
        params={"since": "2000-01-01T00:00:00Z", "until": "2999-01-01T00:00:00+02:00"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 200, response.text
    assert response.json()["total"] >= 1  # the first admin's creation, at least


async def test_api_key_expiry_refuses_a_number(platform: Platform, admin_token: str) -> None:
    response = await platform.client.post(
        "/api/v1/api-keys",
        json={"name": "ci", "expires_at": 4102444800},
        headers=bearer(admin_token),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "expires_at"


@pytest.mark.parametrize("username", ["me", "ME"])
async def test_me_is_no_username(platform: Platform, admin_token: str, username: str) -> None:
    response = await platform.client.post(
        "/api/v1/users",
        json={"username": username, "password": "Some-Long-Passphrase-42", "role": "viewer"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "reserved_username"
    assert "/api/v1/users/me" in response.json()["error"]["message"]
