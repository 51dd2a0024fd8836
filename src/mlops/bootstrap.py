"""Start-up checks and the first admin.

Outside development the platform refuses to start without a secret key or with a weak
admin password, and says what to set. The first admin is made by the migration step
(`mlops db upgrade`, the db-migrate Job) from MLOPS_ADMIN_PASSWORD: the servers'
pods do not hold that password. `mlops up` makes it too (in development it generates
and prints one).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.auth import service as users
from mlops.auth.passwords import PasswordHasherPool, check_password_policy, generate_password
from mlops.auth.roles import Role
from mlops.config import Settings, ensure_secret_key
from mlops.context import PlatformContext, create_hasher
from mlops.db.session import create_engine, create_session_factory, transaction
from mlops.errors import ConfigError, Conflict, Invalid

NO_ADMIN_HINT = (
    "no user exists and MLOPS_ADMIN_PASSWORD is unset here, so nobody can sign in yet. "
    "Create the first admin: run `mlops db upgrade` with MLOPS_ADMIN_PASSWORD set (in "
    "Kubernetes the db-migrate Job reads it from the Secret mlops-app-secrets, key "
    "admin-password), or in an API pod: kubectl exec -it -n mlops-production "
    "deploy/api-server -- mlops users create admin --role admin --config "
    "/etc/mlops/application.yml"
)


def check_startup_settings(settings: Settings, *, creates_admin: bool = False) -> None:
    """Raise ConfigError naming what to set; nothing is changed.

    ``creates_admin``: the process makes the first admin itself (``mlops up``), so
    outside development it needs MLOPS_ADMIN_PASSWORD. The servers do not; when one is
    given anyway it must pass the password policy.
    """
    ensure_secret_key(settings)
    if settings.is_development:
        return
    env = settings.environment
    if settings.admin_password is None and creates_admin:
        raise ConfigError(
            f"MLOPS_ADMIN_PASSWORD is required when MLOPS_ENVIRONMENT={env}: set a strong "
            "password (at least 12 characters, not a common one) for the first admin"
        )
    check_admin_password(settings)
    if settings.metrics_token is None:
        # /metrics names every served model and version: not for anyone on the network.
        raise ConfigError(
            f"MLOPS_METRICS_TOKEN is required when MLOPS_ENVIRONMENT={env}: /metrics lists "
            "model names and versions, so Prometheus must send this token (its scrape "
            "config's authorization.credentials_file). Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def check_admin_password(settings: Settings) -> None:
    """A given MLOPS_ADMIN_PASSWORD must pass the password policy (an empty one too)."""
    if settings.admin_password is None:
        return
    try:
        check_password_policy(
            settings.admin_password.get_secret_value(), username=settings.admin_username
        )
    except Invalid as exc:
        raise ConfigError(
            f"MLOPS_ADMIN_PASSWORD is too weak for MLOPS_ENVIRONMENT={settings.environment}: "
            f"{exc.message}"
        ) from None


@dataclass(frozen=True)
class AdminCreated:
    username: str
    generated_password: str | None  # set only when we made it up; print it once


@dataclass(frozen=True)
class NoAdmin:
    """No user exists and there is no password to make the first admin with."""

    hint: str = NO_ADMIN_HINT


async def ensure_first_admin(ctx: PlatformContext) -> AdminCreated | NoAdmin | None:
    """Create the first admin when there are no users yet (None: there are users).

    Development generates a password when none is given; elsewhere the answer is
    NoAdmin, for the caller to say how to make one.
    """
    return await _ensure_admin(
        ctx.settings, ctx.sessions, ctx.hasher, generate=ctx.settings.is_development
    )


async def ensure_first_admin_after_migration(settings: Settings) -> AdminCreated | NoAdmin | None:
    """The same for `mlops db upgrade`, with only the database and a password hasher:
    the migration Job holds no signing key, Redis or artifact store. Never generates."""
    engine = create_engine(settings)
    hasher = create_hasher(settings)
    try:
        return await _ensure_admin(settings, create_session_factory(engine), hasher, generate=False)
    finally:
        hasher.close()
        await engine.dispose()


async def _ensure_admin(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    hasher: PasswordHasherPool,
    *,
    generate: bool,
) -> AdminCreated | NoAdmin | None:
    async with transaction(sessions) as session:
        if await users.count_users(session=session) > 0:
            return None
        generated = None
        if settings.admin_password is not None:
            password = settings.admin_password.get_secret_value()
        elif generate:
            password = generated = generate_password()
        else:
            return NoAdmin()
        try:
            await users.create_user(
                session=session,
                hasher=hasher,
                actor="system",
                username=settings.admin_username,
                password=password,
                role=Role.admin,
            )
        except Invalid as exc:
            raise ConfigError(f"MLOPS_ADMIN_PASSWORD: {exc.message}") from None
        except Conflict:
            return None  # another process starting at the same moment created it
    return AdminCreated(settings.admin_username, generated)
