"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs too much per request).

``ObservabilityMiddleware`` gives every request an id (kept from ``X-Request-ID``
when the caller sent a sane one), echoes it in the response with the security
headers (``security_headers``), records metrics by route template, and writes one
JSON access log line.
``BodyLimitMiddleware`` refuses request bodies over a limit before they are read
into memory.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops.api.security_headers import with_security_headers
from mlops.observability.access_log import log_request
from mlops.observability.logs import request_id_var
from mlops.observability.metrics import HttpMetrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = logging.getLogger("mlops.api")


class RequestObserver:
    """What every request gets: an id, metrics by route template, an access log line.

    Shared by ``ObservabilityMiddleware`` and the predict fast path, which answers
    before the middleware stack.
    """

    def __init__(self, metrics: HttpMetrics, *, access_log_enabled: bool) -> None:
        self.metrics = metrics
        self.access_log_enabled = access_log_enabled

    def finish(self, scope: Scope, template: str, status: int, elapsed: float) -> None:
        method = scope["method"]
        self.metrics.observe(template, method, status, elapsed)
        if self.access_log_enabled:
            client = (scope.get("client") or ("", 0))[0]
            log_request(method, scope["path"], template, status, elapsed, client)


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new random one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    # An identifier, not a secret: the process's PRNG (reseeded on fork) is enough,
    # and costs less than a getrandom system call per request.
    return f"{random.getrandbits(128):032x}"


def internal_error_message(request_id: str) -> str:
    return f"internal error; quote request id {request_id} when reporting it"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, observer: RequestObserver) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*with_security_headers(message.get("headers", [])), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Caught here rather than by Starlette's outer handler so the 500 still
            # carries the request id, in the body and the header.
            log.exception("unhandled error")
            if not started:
                await send_error(
                    send_with_id, 500, "internal_error", internal_error_message(request_id)
                )
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.observer.finish(scope, template, status, time.perf_counter() - start)
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuse bodies over ``default_limit`` bytes (413), or over the limit of a path pattern."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        limits: dict[re.Pattern[str], int] | None = None,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = list((limits or {}).items())

    def _limit_for(self, path: str) -> int:
        for pattern, limit in self.limits:
            if pattern.match(path):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "bad_request", "invalid Content-Length header")
                    return
                if declared > limit:
                    await _send_too_large(send, limit)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _send_too_large(send, limit)


class _BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI re-raises those from body parsing instead of
    # turning them into a generic 400; the error handler renders the 413.
    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes"


async def _send_too_large(send: Send, limit: int) -> None:
    await send_error(send, 413, "payload_too_large", too_large_message(limit))


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
