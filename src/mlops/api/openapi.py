"""The error answers as the OpenAPI document describes them, declared once.

Routes list the statuses they can answer with ``responses=error_responses(...)``; each
gets the one error schema, ``{"error": {"code", "message", "details"?}}``, and the
headers that come with it. ``use_platform_openapi`` makes FastAPI's own 422 (its
``HTTPValidationError`` shape, which this platform never sends) show the error schema
too, for any route that does not list its statuses. The ``/v2`` routes document the
Open Inference Protocol's shape instead (``serving/v2.py``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. model_not_found.")
    message: str = Field(description="What went wrong and what is expected, for people.")
    details: Any = Field(
        None, description="More, when there is more: e.g. one entry per invalid field."
    )


class ErrorBody(BaseModel):
    """Every error of the platform's API (not ``/v2``)."""

    error: ErrorDetail


WHEN: dict[int, str] = {
    400: "The body is not valid JSON (`invalid_json`), or a form or header is malformed.",
    401: "No valid token or API key (`unauthorized`, `invalid_token`), or wrong credentials.",
    403: "Authenticated, but your role or kind of credential may not do this.",
    404: "No such object; the code names which (`model_not_found`, `user_not_found`...).",
    409: "Conflicts with the current state; the code says which.",
    413: "The body (or the number of rows) is over its limit.",
    422: "The request's content is not acceptable (`validation_error` names each field).",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    500: "The model failed on this input (`inference_failed`).",
    503: "A dependency (database, Redis, a model that failed to load) cannot answer now; "
    "retry after `Retry-After` seconds when it is sent.",
}
_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}
# Any route that takes a token or key: refused without one; the check reads the
# database or Redis, which may be down.
AUTHENTICATED = (401, 503)
# A route that reads a JSON body: not JSON, over the body limit, not the expected shape.
JSON_BODY = (400, 413, 422)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for these error statuses, with the error schema."""
    unknown = set(statuses) - WHEN.keys()
    if unknown:
        raise ValueError(f"no description for status {sorted(unknown)}; add it to WHEN")
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {"model": ErrorBody, "description": WHEN[status]}
        if status in HEADERS:
            entry["headers"] = HEADERS[status]
        responses[status] = entry
    return responses


def _platform_422(schema: dict[str, Any]) -> None:
    """FastAPI's default 422 refers to its HTTPValidationError; the platform sends ErrorBody."""
    default_ref = "#/components/schemas/HTTPValidationError"
    ours = {"$ref": "#/components/schemas/ErrorBody"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            response = operation.get("responses", {}).get("422")
            content = (response or {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") == default_ref:
                content["schema"] = ours
                response["description"] = WHEN[422]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if default_ref not in json.dumps(schema.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    generated = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in generated.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault("ErrorBody", generated)


def use_platform_openapi(app: FastAPI) -> None:
    """The document FastAPI builds (once), with the platform's 422 shape everywhere."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _platform_422(build())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
