"""Open Inference Protocol errors on ``/v2``: ``{"error": "<message>"}``.

Errors reach ``/v2`` answers from several layers (route handlers, request validation,
routing's 404 and 405, the body limit, the observability middleware's 500), and each
renders the platform's ``{"error": {"code", "message"}}``. The protocol wants a string
there, and stock clients rely on it (``tritonclient.http`` builds its exception from
it, and that exception's ``str()`` raised ``TypeError`` on an object). This middleware,
outside all of those layers, rewrites such answers on ``/v2`` paths and moves the
machine-readable code to the ``X-Error-Code`` header.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ERROR_CODE_HEADER = "X-Error-Code"
PREFIX = "/v2"


def is_oip_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def oip_error(body: bytes) -> tuple[bytes, str] | None:
    """The protocol's body and the code, for a platform error body; else None."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    return orjson.dumps({"error": message}), code


class OipErrorMiddleware:
    """Error answers (4xx, 5xx) on ``/v2`` in the protocol's shape; everything else as is.

    Only error answers are held back (they are small); a successful answer, or one
    that is not a platform error (``/v2/health/ready``'s ``{"ready": false}``), streams
    through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_oip_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def send_oip(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                start, held = held, None
                body = b"".join(chunks)
                translated = oip_error(body)
                if translated is not None:
                    body, code = translated
                    start = {**start, "headers": _headers(start, len(body), code)}
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_oip)


def _headers(start: Message, length: int, code: str) -> list[tuple[bytes, bytes]]:
    kept = [
        (name, value)
        for name, value in start.get("headers", [])
        if name.lower() not in (b"content-length", ERROR_CODE_HEADER.lower().encode())
    ]
    return [
        *kept,
        (b"content-length", str(length).encode()),
        (ERROR_CODE_HEADER.lower().encode(), code.encode("latin-1", "replace")),
    ]
