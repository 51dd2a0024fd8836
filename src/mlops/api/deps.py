"""Request dependencies: the platform context, a database session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.auth.browser_session import authenticate_cookie, session_cookie
from mlops.auth.principal import Principal
from mlops.auth.roles import Role
from mlops.auth.tokens import parse_bearer
from mlops.context import PlatformContext
from mlops.db.session import commit
from mlops.errors import Forbidden


async def get_context(request: Request) -> PlatformContext:
    # async: FastAPI runs plain ``def`` dependencies on a worker thread, which costs
    # more than this lookup.
    ctx: PlatformContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[PlatformContext, Depends(get_context)]


async def get_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    async with ctx.sessions() as session:
        try:
            yield session
            await commit(session)
        except BaseException:
            session.info.pop("post_commit", None)
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_credential(request: Request) -> str:
    return parse_bearer(request.headers.get("authorization"))


async def get_principal(request: Request, ctx: ContextDep) -> Principal:
    # A browser signed in to the web UI sends its session cookie (auth/browser_session.py).
    cookie = session_cookie(request)
    if cookie is not None:
        principal = await authenticate_cookie(request, ctx, cookie)
    else:
        principal = await ctx.gate.authenticate(bearer_credential(request))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(role: Role) -> object:
    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(
                f"this needs the {role.value} role; you are {principal.role.value}",
                code="forbidden",
            )
        return principal

    return Depends(check)


AdminPrincipal = Annotated[Principal, require_role(Role.admin)]
EditorPrincipal = Annotated[Principal, require_role(Role.editor)]
