"""One JSON error shape for every error: ``{"error": {"code", "message"}}``.

Unknown exceptions are caught by ``ObservabilityMiddleware``: logged with their
stack trace and answered with a generic 500 that carries the request id. A database
that cannot answer (connection refused, pool exhausted) is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops.db.failures import DatabaseUnavailable, is_outage
from mlops.errors import PlatformError

log = logging.getLogger("mlops.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: Any = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _platform_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    return error_response(
        exc.status_code, exc.code, exc.message, headers=exc.headers, details=exc.details
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": _field(tuple(err["loc"])), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    if any(err["type"] == "json_invalid" for err in exc.errors()):
        return error_response(400, "invalid_json", "request body is not valid JSON")
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    return error_response(422, "validation_error", f"invalid request: {summary}", details=problems)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document lists for a path that matches this request's.
    Starlette's 405 names only the first route that matched the path, so ``Allow``
    left out e.g. PATCH and DELETE on a path whose GET route came first."""
    matches = [
        (pattern, listed)
        for pattern, listed in _path_patterns(request.app).items()
        if pattern.fullmatch(request.url.path)
    ]
    # A literal path (/users/me) is routed before a template that also matches it
    # (/users/{username}): only its own methods are allowed there.
    literal = [listed for pattern, listed in matches if "[^/]+" not in pattern.pattern]
    methods: set[str] = set().union(*(literal or [listed for _, listed in matches]))
    return sorted(methods)


def _path_patterns(app: Any) -> dict[re.Pattern[str], set[str]]:
    patterns: dict[re.Pattern[str], set[str]] | None = getattr(app.state, "path_methods", None)
    if patterns is None:
        patterns = {}
        for template, operations in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            patterns[re.compile(regex)] = {method.upper() for method in operations}
        app.state.path_methods = patterns
    return patterns


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    headers = exc.headers
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; see /docs for the API"
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
    return error_response(exc.status_code, code, message, headers=headers)


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    if not is_outage(exc):
        raise exc  # a bug, not an outage: the generic 500 with its stack trace
    log.warning(
        "database unavailable; answered 503",
        extra={"error": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"},
    )
    unavailable = DatabaseUnavailable()
    return error_response(
        unavailable.status_code, unavailable.code, unavailable.message, headers=unavailable.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
