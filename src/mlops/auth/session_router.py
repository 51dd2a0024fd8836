"""``/api/v1/auth/session``: sign a browser in and out (cookie and CSRF: browser_session.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from mlops.api.openapi import AUTHENTICATED, JSON_BODY, error_responses
from mlops.auth import service
from mlops.auth.browser_session import SESSION_COOKIE, authenticate_cookie, csrf_token
from mlops.auth.principal import Principal
from mlops.auth.roles import Role
from mlops.auth.router import login
from mlops.auth.schemas import LoginRequest
from mlops.context import PlatformContext
from mlops.db.session import commit
from mlops.errors import Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=error_responses(*AUTHENTICATED))


class BrowserSession(BaseModel):
    username: str
    role: Role
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every write.")
    expires_at: float = Field(description="When the session ends (Unix time).")


def _answer(ctx: PlatformContext, principal: Principal) -> BrowserSession:
    assert principal.token_jti is not None and principal.token_expires_at is not None
    return BrowserSession(
        username=principal.username,
        role=principal.role,
        csrf_token=csrf_token(ctx, principal.token_jti),
        expires_at=principal.token_expires_at,
    )


def _context(request: Request) -> PlatformContext:
    ctx: PlatformContext = request.app.state.ctx
    return ctx


@router.post("/session", response_model=BrowserSession, responses=error_responses(*JSON_BODY, 429))
async def create_session(
    body: LoginRequest, request: Request, response: Response
) -> BrowserSession:
    """Sign a browser in: the token goes into an HttpOnly cookie, never to page scripts.
    Wrong passwords are throttled as for ``POST /api/v1/auth/login``."""
    ctx = _context(request)
    async with ctx.sessions() as session:
        issued = await login(body, request, session, ctx)
        await commit(session)
    principal = await ctx.gate.authenticate(issued.access_token)
    response.set_cookie(
        SESSION_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        path="/",
        httponly=True,
        secure=not ctx.settings.is_development,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return _answer(ctx, principal)


@router.get("/session", response_model=BrowserSession)
async def read_session(request: Request, response: Response) -> BrowserSession:
    """Who the browser's session cookie belongs to, and its CSRF token (401 without one)."""
    ctx = _context(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("not signed in: sign in at /login", code="no_session")
    response.headers["Cache-Control"] = "no-store"
    return _answer(ctx, await authenticate_cookie(request, ctx, token))


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(403))
async def end_session(request: Request) -> Response:
    """Sign out: the token is revoked in every process (as ``POST /api/v1/auth/logout``)
    and the cookie cleared. Needs the CSRF token, so another site cannot sign you out."""
    ctx = _context(request)
    token = request.cookies.get(SESSION_COOKIE)
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        secure=not ctx.settings.is_development,
        samesite="strict",
    )
    if not token:
        return answer
    try:
        principal = await authenticate_cookie(request, ctx, token)
    except Unauthorized:
        return answer  # already ended: clearing the cookie is all that is left
    async with ctx.sessions() as session:
        await service.revoke_token(session=session, gate=ctx.gate, principal=principal)
        await commit(session)
    return answer
