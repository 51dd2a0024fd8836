"""The predict endpoints as plain ASGI, in front of FastAPI and its middleware.

FastAPI's routing, dependency resolution, its own middleware (exception
telemetry, body limit, server errors) and our two middleware layers cost about
two thirds of a single-row prediction's time (profiled under load). ``PredictFront``
answers ``POST /api/v1/models/predict`` and ``POST /api/v1/models/{name}/predict``
before all of that, doing itself what those layers do for every request: the
request id, the body limit, metrics and the access log, the 500 with the request
id. Authentication, validation, errors and metrics are the same as the documented
FastAPI routes' (which stay registered for the OpenAPI description and answer when
``MLOPS_PREDICT_FAST_PATH=false``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from starlette.types import Message, Receive, Scope, Send

from mlops.api.middleware import (
    RequestObserver,
    internal_error_message,
    request_id_of,
    too_large_message,
)
from mlops.api.security_headers import SECURITY_HEADERS
from mlops.auth.access import AccessGate
from mlops.auth.tokens import parse_bearer
from mlops.errors import BadRequest, PayloadTooLarge, PlatformError
from mlops.observability.logs import request_id_var
from mlops.registry.schemas import NAME_PATTERN
from mlops.serving.dataplane import DataPlane
from mlops.serving.rest import run_predict

_PATH = re.compile(r"^/api/v1/models/(?:(?P<name>[^/]+)/)?predict$")
_NAME = re.compile(NAME_PATTERN)
_ALLOWED_QUERY = frozenset({"version", "alias"})


_DEFAULT = "/api/v1/models/predict"
_NAMED = "/api/v1/models/{name}/predict"
log = logging.getLogger("mlops.api")


@dataclass(frozen=True, slots=True)
class PredictCall:
    name: str | None
    version: int | None
    alias: str | None


def _query(scope: Scope) -> tuple[int | None, str | None] | None:
    """(version, alias), or None when the query string is not plainly valid."""
    raw = scope.get("query_string", b"")
    if not raw:
        return None, None
    params = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    if not params.keys() <= _ALLOWED_QUERY:
        return None
    version = params.get("version")
    alias = params.get("alias")
    if version is not None and (not version.isdigit() or not 0 < int(version) < 2**31):
        return None
    if alias is not None and not _NAME.match(alias):
        return None
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


# What nginx logs for a client that went away before its answer: nobody reads the
# answer, and an empty body misread as bad JSON would count a 400 that no client got.
CLIENT_CLOSED_REQUEST = 499


class _ClientGone(Exception):
    """The client disconnected before its request body was read whole."""


async def _body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for key, value in scope["headers"]:
        if key == b"content-length":
            if not value.isdigit():
                raise BadRequest("invalid Content-Length header", code="bad_request")
            if int(value) > limit:
                raise PayloadTooLarge(too_large_message(limit))
            break
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large_message(limit))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
            *SECURITY_HEADERS,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def parse(scope: Scope) -> PredictCall | None:
    """What a predict request asks for, when the front answers it.

    Anything irregular in the path or query string is left to the FastAPI routes, so
    that their validation errors are the only ones (a test holds the two paths to the
    same answers).
    """
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path = _PATH.match(scope["path"])
    if path is None:
        return None
    name = path.group("name")
    if name is not None and not _NAME.match(name):
        return None
    query = _query(scope)
    if query is None:
        return None
    return PredictCall(name, *query)


class PredictFront:
    def __init__(
        self,
        *,
        plane: Callable[[], DataPlane],
        gate: Callable[[], AccessGate],
        observer: RequestObserver,
        body_limit: int,
    ) -> None:
        self._plane = plane
        self._gate = gate
        self._observer = observer
        self._body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send, call: PredictCall) -> None:
        start = time.perf_counter()
        request_id = request_id_of(scope)
        token = request_id_var.set(request_id)
        id_header = (b"x-request-id", request_id.encode())
        template = _NAMED if call.name else _DEFAULT
        status = 500
        try:
            content, served = await self._predict(scope, receive, call)
            status = 200
            await _respond(
                send, 200, content, [(b"x-model-version", str(served).encode()), id_header]
            )
        except _ClientGone:
            status = CLIENT_CLOSED_REQUEST
        except PlatformError as exc:
            status = exc.status_code
            error = orjson.dumps({"error": {"code": exc.code, "message": exc.message}})
            headers = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            await _respond(send, status, error, [*headers, id_header])
        except Exception:
            log.exception("unhandled error")
            error = orjson.dumps(
                {"error": {"code": "internal_error", "message": internal_error_message(request_id)}}
            )
            await _respond(send, 500, error, [id_header])
        finally:
            self._observer.finish(scope, template, status, time.perf_counter() - start)
            request_id_var.reset(token)

    async def _predict(
        self, scope: Scope, receive: Receive, call: PredictCall
    ) -> tuple[bytes, int]:
        credential, routing_key = _credential(scope)
        principal = await self._gate().authenticate(credential)
        return await run_predict(
            self._plane(),
            await _body(scope, receive, self._body_limit),
            name=call.name,
            version=call.version,
            alias=call.alias,
            routing_key=routing_key,
            caller=principal.user_id,
        )
