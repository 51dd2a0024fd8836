"""The predict endpoints as plain ASGI, in front of FastAPI.

FastAPI's routing, dependency resolution and exception middleware cost about half
of a single-row prediction's time (profiled under load). This middleware answers
``POST /api/v1/models/predict`` and ``POST /api/v1/models/{name}/predict`` itself,
with the same authentication, validation, errors and metrics as the documented
FastAPI routes (which stay registered for the OpenAPI description and are used when
``MLOPS_PREDICT_FAST_PATH=false``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops.auth.access import AccessGate
from mlops.auth.tokens import parse_bearer
from mlops.errors import Invalid, PlatformError
from mlops.registry.schemas import NAME_PATTERN
from mlops.serving.dataplane import DataPlane
from mlops.serving.rest import run_predict

_PATH = re.compile(r"^/api/v1/models/(?:(?P<name>[^/]+)/)?predict$")
_NAME = re.compile(NAME_PATTERN)
_ALLOWED_QUERY = frozenset({"version", "alias"})


@dataclass(frozen=True, slots=True)
class _Template:
    """Stands in for a matched route, so metrics label requests by template."""

    path: str


_DEFAULT = _Template("/api/v1/models/predict")
_NAMED = _Template("/api/v1/models/{name}/predict")


def _query(scope: Scope) -> tuple[int | None, str | None]:
    raw = scope.get("query_string", b"").decode("latin-1")
    params = dict(parse_qsl(raw, keep_blank_values=True))
    unknown = set(params) - _ALLOWED_QUERY
    if unknown:
        raise Invalid(f"unknown query parameters: {', '.join(sorted(unknown))}")
    version = params.get("version")
    alias = params.get("alias")
    if version is not None and (not version.isdigit() or not 0 < int(version) < 2**31):
        raise Invalid("version must be a positive integer", code="validation_error")
    if alias is not None and not _NAME.match(alias):
        raise Invalid(f"alias must match {NAME_PATTERN}", code="validation_error")
    return (int(version) if version is not None else None), alias


def _credential(scope: Scope) -> tuple[str, str | None]:
    authorization = None
    routing_key = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            authorization = value.decode("latin-1")
        elif key == b"x-routing-key":
            routing_key = value.decode("latin-1")
    return parse_bearer(authorization), routing_key


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


class PredictFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        plane: Callable[[], DataPlane],
        gate: Callable[[], AccessGate],
    ) -> None:
        self.app = app
        self._plane = plane
        self._gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        name = match.group("name")
        scope["route"] = _NAMED if name else _DEFAULT
        try:
            if name is not None and not _NAME.match(name):
                raise Invalid(f"model names match {NAME_PATTERN}", code="validation_error")
            version, alias = _query(scope)
            credential, routing_key = _credential(scope)
            await self._gate().authenticate(credential)
            content, served = await run_predict(
                self._plane(),
                await _body(receive),
                name=name,
                version=version,
                alias=alias,
                routing_key=routing_key,
            )
        except PlatformError as exc:
            error = orjson.dumps({"error": {"code": exc.code, "message": exc.message}})
            headers = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            await _respond(send, exc.status_code, error, headers)
            return
        await _respond(send, 200, content, [(b"x-model-version", str(served).encode())])
