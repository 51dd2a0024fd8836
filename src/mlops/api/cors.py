"""Cross-origin browser calls: refused unless the caller's origin is listed in
``MLOPS_CORS_ORIGINS`` (off by default).

Starlette's ``CORSMiddleware`` does the work; a refused preflight answers in the
platform's error shape. Credentials travel in the ``Authorization`` header, never
in cookies, so no origin is allowed credentials mode.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Scope

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "X-Routing-Key")
EXPOSED_HEADERS = ("X-Request-ID", "X-Model-Version", "X-Artifact-SHA256", "Retry-After")
PREFLIGHT_MAX_AGE_S = 600


class PlatformCORSMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, *, origins: Collection[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE_S,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        # Starlette's text names what failed: "Disallowed CORS origin, headers".
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        message = (
            f"cross-origin request refused ({refused}): browser calls are accepted only from "
            "the origins listed in MLOPS_CORS_ORIGINS, with methods "
            f"{', '.join(ALLOWED_METHODS)} and headers {', '.join(ALLOWED_HEADERS)}"
        )
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return JSONResponse(
            {"error": {"code": "cors_refused", "message": message}},
            status_code=400,
            headers=headers,
        )


def has_origin(scope: Scope) -> bool:
    """Whether a request came from a browser page that declared its origin."""
    return any(name == b"origin" for name, _ in scope["headers"])
