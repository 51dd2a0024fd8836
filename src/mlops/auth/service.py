"""Users and API keys: the rules, independent of HTTP.

Services flush; the caller's transaction commits. Cache updates that must follow
a change are queued with ``after_commit``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mlops.audit.service import record_event
from mlops.auth.access import AccessGate
from mlops.auth.models import ApiKey, RevokedToken, User
from mlops.auth.passwords import PasswordHasherPool, check_password_policy
from mlops.auth.principal import Principal
from mlops.auth.roles import Role
from mlops.auth.tokens import new_api_key
from mlops.db.paging import Page, fetch_object_page, fetch_page
from mlops.db.session import PostCommit, after_commit
from mlops.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

WRONG_PASSWORD = "Wrong username or password."
RESERVED_USERNAMES = frozenset({"me"})


def require_login_token(principal: Principal, action: str) -> None:
    """API keys are for machines: they may not mint keys or change passwords, so a key
    (perhaps leaked, expired or revoked since) can never leave a credential behind."""
    if principal.via != "token":
        raise Forbidden(
            f"{action} needs a login token, not an API key; log in with "
            "POST /api/v1/auth/login and send that token",
            code="login_token_required",
        )


async def get_user_by_name(*, session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def count_users(*, session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def authenticate_password(
    *, session: AsyncSession, hasher: PasswordHasherPool, username: str, password: str
) -> User:
    """The user, or ``Unauthorized`` with one message whatever was wrong.

    An unknown user costs a hash too, so timing does not reveal which names exist.
    """
    user = await get_user_by_name(session=session, username=username)
    ok = await hasher.verify(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        raise Unauthorized(WRONG_PASSWORD, code="invalid_credentials")
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = await hasher.hash(password)
        await session.flush()
    return user


async def create_user(
    *,
    session: AsyncSession,
    hasher: PasswordHasherPool,
    actor: str,
    username: str,
    password: str,
    role: Role,
) -> User:
    if username.lower() in RESERVED_USERNAMES:
        # /api/v1/users/me is the caller: a user named "me" could not be addressed.
        raise Invalid(
            f"the username {username!r} is reserved (/api/v1/users/me is the caller); "
            "choose another",
            code="reserved_username",
        )
    check_password_policy(password, username=username)
    if await get_user_by_name(session=session, username=username) is not None:
        raise Conflict(f"user {username!r} already exists", code="user_exists")
    user = User(
        username=username,
        password_hash=await hasher.hash(password),
        role=role.value,
        disabled=False,
        token_version=1,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"user {username!r} already exists", code="user_exists") from None
    await record_event(
        session=session,
        actor=actor,
        action="user.created",
        target=f"user:{username}",
        after={"role": role.value},
    )
    return user


async def list_users(*, session: AsyncSession, page: Page) -> tuple[list[User], int]:
    """One page of the users by id, and how many there are."""
    return await fetch_object_page(session, select(User).order_by(User.id), page)


async def require_user(*, session: AsyncSession, username: str) -> User:
    user = await get_user_by_name(session=session, username=username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist", code="user_not_found")
    return user


async def update_user(
    *,
    session: AsyncSession,
    gate: AccessGate,
    actor: Principal,
    username: str,
    role: Role | None,
    disabled: bool | None,
) -> User:
    """Change role or disabled flag; either change ends the user's current tokens."""
    user = await require_user(session=session, username=username)
    if user.id == actor.user_id and (role is not None or disabled is not None):
        raise Forbidden(
            "you cannot change your own role or disable yourself; ask another admin",
            code="self_modification",
        )
    before = {"role": user.role, "disabled": user.disabled}
    if role is not None:
        user.role = role.value
    if disabled is not None:
        user.disabled = disabled
    after = {"role": user.role, "disabled": user.disabled}
    if after == before:
        return user
    user.token_version += 1
    if user.disabled:
        await _revoke_all_keys(session=session, gate=gate, owner_id=user.id)
    await session.flush()
    await record_event(
        session=session,
        actor=actor.username,
        action="user.updated",
        target=f"user:{username}",
        before=before,
        after=after,
    )
    after_commit(session, lambda: gate.publish_user(user))
    return user


async def change_password(
    *,
    session: AsyncSession,
    hasher: PasswordHasherPool,
    gate: AccessGate,
    actor: Principal,
    old_password: str,
    new_password: str,
) -> None:
    user = await session.get(User, actor.user_id)
    if user is None or not await hasher.verify(user.password_hash, old_password):
        raise Forbidden("the old password is wrong", code="wrong_password")
    check_password_policy(new_password, username=user.username)
    if old_password == new_password:
        raise Invalid("the new password must differ from the old one", code="weak_password")
    user.password_hash = await hasher.hash(new_password)
    user.token_version += 1
    revoked = await _revoke_all_keys(session=session, gate=gate, owner_id=user.id)
    await session.flush()
    await record_event(
        session=session,
        actor=actor.username,
        action="user.password_changed",
        target=f"user:{user.username}",
        after={"api_keys_revoked": revoked},
    )
    after_commit(session, lambda: gate.publish_user(user))


async def set_password(
    *,
    session: AsyncSession,
    hasher: PasswordHasherPool,
    gate: AccessGate,
    actor: str,
    username: str,
    password: str,
) -> User:
    """Administrative reset (CLI); ends the user's tokens and revokes their API keys."""
    user = await require_user(session=session, username=username)
    check_password_policy(password, username=username)
    user.password_hash = await hasher.hash(password)
    user.token_version += 1
    revoked = await _revoke_all_keys(session=session, gate=gate, owner_id=user.id)
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="user.password_reset",
        target=f"user:{username}",
        after={"api_keys_revoked": revoked},
    )
    after_commit(session, lambda: gate.publish_user(user))
    return user


async def revoke_token(*, session: AsyncSession, gate: AccessGate, principal: Principal) -> None:
    if principal.token_jti is None or principal.token_expires_at is None:
        raise Invalid(
            "logout ends a login token; to end an API key use DELETE /api/v1/api-keys/{id}",
            code="not_a_token",
        )
    jti, expires = principal.token_jti, principal.token_expires_at
    if await session.get(RevokedToken, jti) is None:
        session.add(
            RevokedToken(
                jti=jti,
                user_id=principal.user_id,
                expires_at=datetime.fromtimestamp(expires, UTC),
            )
        )
        await session.flush()
    after_commit(session, lambda: gate.publish_token_revoked(jti, expires))


async def create_api_key(
    *,
    session: AsyncSession,
    actor: Principal,
    name: str,
    role: Role | None,
    expires_at: datetime | None,
    max_ttl: timedelta,
) -> tuple[ApiKey, str]:
    """A new key and its secret; the role defaults to, and may not exceed, the creator's.

    Only a login token creates keys, and a key lives at most ``max_ttl``: without an
    expiry it gets the longest, so no key outlives the setting.
    """
    require_login_token(actor, "creating an API key")
    wanted = role or actor.role
    if not actor.role.allows(wanted):
        raise Forbidden(
            f"an API key's role may not exceed yours ({actor.role.value}); "
            f"asked for {wanted.value}",
            code="role_too_high",
        )
    now = datetime.now(UTC)
    latest = now + max_ttl
    if expires_at is None:
        expires_at = latest
    elif expires_at <= now:
        raise Invalid("expires_at must be in the future", code="invalid_expiry")
    elif expires_at > latest:
        raise Invalid(
            f"expires_at may be at most {_days(max_ttl)} days ahead "
            f"(MLOPS_API_KEY_MAX_TTL_DAYS), that is until {latest.isoformat(timespec='seconds')}; "
            f"got {expires_at.isoformat()}",
            code="invalid_expiry",
        )
    fresh = new_api_key()
    key = ApiKey(
        prefix=fresh.prefix,
        secret_hash=fresh.secret_hash,
        name=name,
        role=wanted.value,
        owner_id=actor.user_id,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await record_event(
        session=session,
        actor=actor.username,
        action="api_key.created",
        target=f"api_key:{key.id}",
        after={
            "name": name,
            "role": wanted.value,
            "prefix": fresh.prefix,
            "expires_at": expires_at.isoformat(),
        },
    )
    return key, fresh.key


async def list_api_keys(
    *, session: AsyncSession, actor: Principal, all_users: bool, page: Page
) -> tuple[list[tuple[ApiKey, str]], int]:
    if all_users and actor.role is not Role.admin:
        raise Forbidden("only admins may list every user's API keys", code="forbidden")
    query = select(ApiKey, User.username).join(User, User.id == ApiKey.owner_id)
    if not all_users:
        query = query.where(ApiKey.owner_id == actor.user_id)
    rows, total = await fetch_page(session, query.order_by(ApiKey.id), page)
    return [(key, owner) for key, owner in rows], total


async def revoke_api_key(
    *, session: AsyncSession, gate: AccessGate, actor: Principal, key_id: int
) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    # Another user's key looks exactly like a missing one: ids reveal nothing.
    if key is None or (key.owner_id != actor.user_id and actor.role is not Role.admin):
        raise NotFound(f"API key {key_id} does not exist", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
        await record_event(
            session=session,
            actor=actor.username,
            action="api_key.revoked",
            target=f"api_key:{key.id}",
        )
    after_commit(session, lambda: gate.publish_key(key))
    return key


def _days(ttl: timedelta) -> str:
    return f"{ttl.total_seconds() / 86400:g}"


async def _revoke_all_keys(*, session: AsyncSession, gate: AccessGate, owner_id: int) -> int:
    """Revoke every live key of ``owner_id``; returns how many were live."""
    now = datetime.now(UTC)
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.owner_id == owner_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    keys = list(await session.scalars(select(ApiKey).where(ApiKey.owner_id == owner_id)))
    for key in keys:
        await session.refresh(key)
        after_commit(session, _publisher(gate, key))
    return int(getattr(result, "rowcount", 0) or 0)


def _publisher(gate: AccessGate, key: ApiKey) -> PostCommit:
    return lambda: gate.publish_key(key)
