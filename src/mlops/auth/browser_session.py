"""Browser sign-in: the login token in an HttpOnly cookie, and a CSRF token for writes.

The web UI never holds the credential (ADR 0010): ``POST /api/v1/auth/session``
(auth/session_router.py) logs in as ``POST /api/v1/auth/login`` does (same throttling)
and puts the token in an HttpOnly, SameSite=Strict cookie, Secure outside development.
Page scripts cannot read it, so an injected script cannot steal it. A cookie travels
with every request the browser makes, so a write presented with it also needs
``X-CSRF-Token``: a MAC of the token's id under the signing key, which another site
can neither read nor compute.
"""

from __future__ import annotations

from fastapi import Request

from mlops.auth.principal import Principal
from mlops.context import PlatformContext
from mlops.errors import Forbidden, Unauthorized

SESSION_COOKIE = "mlops_session"
CSRF_HEADER = "x-csrf-token"
_CSRF_PURPOSE = "csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_cookie(request: Request) -> str | None:
    """The session cookie's token, when the request has no Authorization header."""
    if "authorization" in request.headers:
        return None
    return request.cookies.get(SESSION_COOKIE) or None


def csrf_token(ctx: PlatformContext, jti: str) -> str:
    return ctx.signer.derive(_CSRF_PURPOSE, jti)


async def authenticate_cookie(request: Request, ctx: PlatformContext, token: str) -> Principal:
    """The cookie's principal; writes must carry the session's CSRF token."""
    if len(token) > 4096:
        raise Unauthorized("the session cookie is malformed; sign in again")
    principal = await ctx.gate.authenticate(token)
    if principal.via != "token" or principal.token_jti is None:
        raise Unauthorized("the session cookie holds no login token; sign in again")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        # Any key the signer verifies with: a page loaded before a key rotation still writes.
        if not ctx.signer.derived_matches(_CSRF_PURPOSE, principal.token_jti, sent):
            raise Forbidden(
                "a write from a signed-in browser needs the X-CSRF-Token header "
                "(GET /api/v1/auth/session gives it); reload the page",
                code="csrf_failed",
            )
    return principal
