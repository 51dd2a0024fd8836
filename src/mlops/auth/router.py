"""HTTP endpoints of auth: login, logout, users and API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, NoReturn

from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops.api.deps import AdminPrincipal, ContextDep, CurrentPrincipal, SessionDep
from mlops.api.openapi import AUTHENTICATED, JSON_BODY, error_responses
from mlops.api.paging import PageDep
from mlops.auth import service
from mlops.auth.models import ApiKey
from mlops.auth.roles import Role
from mlops.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyRead,
    LoginRequest,
    Me,
    PasswordChange,
    TokenResponse,
    UserCreate,
    UserList,
    UserRead,
    UserUpdate,
)
from mlops.errors import PlatformError

router = APIRouter(prefix="/api/v1", responses=error_responses(*AUTHENTICATED))


def client_address(request: Request) -> str:
    """The caller's address, already resolved behind trusted proxies (api/forwarded.py)."""
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    tags=["auth"],
    responses=error_responses(*JSON_BODY, 429),
)
async def login(
    body: LoginRequest, request: Request, session: SessionDep, ctx: ContextDep
) -> TokenResponse:
    """Exchange a username and password for a bearer token."""
    failures = request.app.state.http_metrics.login_failures
    try:
        async with ctx.login_limiter.attempt(body.username, client_address(request)):
            user = await service.authenticate_password(
                session=session, hasher=ctx.hasher, username=body.username, password=body.password
            )
    except PlatformError as exc:
        # A 503 (Redis or the database down) is an outage, not a wrong password.
        if exc.status_code in (401, 429):
            failures.labels("locked" if exc.status_code == 429 else "invalid_credentials").inc()
        raise
    token = ctx.signer.issue(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        token_version=user.token_version,
    )
    return TokenResponse(access_token=token, expires_in=ctx.signer.ttl_seconds)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=error_responses(422),
)
async def logout(principal: CurrentPrincipal, session: SessionDep, ctx: ContextDep) -> Response:
    """Revoke the token this request presents, in every process."""
    await service.revoke_token(session=session, gate=ctx.gate, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me", response_model=Me, tags=["users"])
async def me(principal: CurrentPrincipal) -> Me:
    """Who the presented token or API key belongs to, and its effective role."""
    return Me(
        id=principal.user_id,
        username=principal.username,
        role=principal.role,
        authenticated_via=principal.via,
    )


@router.api_route(
    "/users/me",
    methods=["POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
    response_model=None,
)
async def me_other_methods() -> NoReturn:
    """``me`` is no username (it is reserved), so PATCH here is not the user update."""
    raise StarletteHTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


@router.post(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["users"],
    responses=error_responses(*JSON_BODY, 403, 429),
)
async def change_my_password(
    body: PasswordChange,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> Response:
    """Change your password (a login token is required, not an API key). Every token you
    hold stops working and every API key you own is revoked. Wrong old passwords count
    like failed logins (429 with ``Retry-After`` beyond the limit)."""
    service.require_login_token(principal, "changing your password")
    async with ctx.login_limiter.attempt(principal.username, client_address(request)):
        await service.change_password(
            session=session,
            hasher=ctx.hasher,
            gate=ctx.gate,
            actor=principal,
            old_password=body.old_password,
            new_password=body.new_password,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/users",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    tags=["users"],
    responses=error_responses(*JSON_BODY, 403, 409),
)
async def create_user(
    body: UserCreate, admin: AdminPrincipal, session: SessionDep, ctx: ContextDep
) -> UserRead:
    user = await service.create_user(
        session=session,
        hasher=ctx.hasher,
        actor=admin.username,
        username=body.username,
        password=body.password,
        role=body.role,
    )
    return UserRead.model_validate(user)


@router.get("/users", response_model=UserList, tags=["users"], responses=error_responses(403, 422))
async def list_users(admin: AdminPrincipal, session: SessionDep, page: PageDep) -> UserList:
    """Users by id, a page at a time (``limit``, ``offset``)."""
    users, total = await service.list_users(session=session, page=page)
    return UserList(items=[UserRead.model_validate(u) for u in users], **page.answer(total))


@router.patch(
    "/users/{username}",
    response_model=UserRead,
    tags=["users"],
    responses=error_responses(*JSON_BODY, 403, 404),
)
async def update_user(
    username: Annotated[str, Path(max_length=64)],
    body: UserUpdate,
    admin: AdminPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> UserRead:
    """Change a user's role or disable them; their tokens (and, when disabled, keys) end at once."""
    user = await service.update_user(
        session=session,
        gate=ctx.gate,
        actor=admin,
        username=username,
        role=body.role,
        disabled=body.disabled,
    )
    return UserRead.model_validate(user)


def _key_read(key: ApiKey, owner: str) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        role=Role(key.role),
        prefix=key.prefix,
        owner=owner,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["api-keys"],
    responses=error_responses(*JSON_BODY, 403),
)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, session: SessionDep, ctx: ContextDep
) -> ApiKeyCreated:
    """Create a key for a machine (with a login token: a key cannot mint keys). The
    secret is in the answer only this once. Without ``expires_at`` the key lives the
    longest lifetime allowed (``MLOPS_API_KEY_MAX_TTL_DAYS``); beyond it is a 422."""
    key, secret = await service.create_api_key(
        session=session,
        actor=principal,
        name=body.name,
        role=body.role,
        expires_at=body.expires_at,
        max_ttl=timedelta(days=ctx.settings.api_key_max_ttl_days),
    )
    return ApiKeyCreated(**_key_read(key, principal.username).model_dump(), key=secret)


@router.get(
    "/api-keys",
    response_model=ApiKeyList,
    tags=["api-keys"],
    responses=error_responses(403, 422),
)
async def list_api_keys(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    all_users: bool = Query(False, alias="all", description="Admins only: every user's keys."),
) -> ApiKeyList:
    rows, total = await service.list_api_keys(
        session=session, actor=principal, all_users=all_users, page=page
    )
    return ApiKeyList(items=[_key_read(key, owner) for key, owner in rows], **page.answer(total))


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["api-keys"],
    responses=error_responses(404, 422),
)
async def revoke_api_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: CurrentPrincipal,
    session: SessionDep,
    ctx: ContextDep,
) -> Response:
    await service.revoke_api_key(session=session, gate=ctx.gate, actor=principal, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
