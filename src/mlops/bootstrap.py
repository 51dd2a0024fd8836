"""Start-up checks and the first admin.

Outside development the platform refuses to start without a secret key or with a
missing or weak admin password, and says what to set.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops.auth import service as users
from mlops.auth.passwords import check_password_policy, generate_password
from mlops.auth.roles import Role
from mlops.config import Settings, ensure_secret_key
from mlops.context import PlatformContext
from mlops.db.session import transaction
from mlops.errors import ConfigError, Conflict, Invalid


def check_startup_settings(settings: Settings) -> None:
    """Raise ConfigError naming what to set; nothing is changed."""
    ensure_secret_key(settings)
    if settings.is_development:
        return
    env = settings.environment
    if settings.admin_password is None:
        raise ConfigError(
            f"MLOPS_ADMIN_PASSWORD is required when MLOPS_ENVIRONMENT={env}: set a strong "
            "password (at least 12 characters, not a common one) for the first admin"
        )
    try:
        check_password_policy(
            settings.admin_password.get_secret_value(), username=settings.admin_username
        )
    except Invalid as exc:
        raise ConfigError(
            f"MLOPS_ADMIN_PASSWORD is too weak for MLOPS_ENVIRONMENT={env}: {exc.message}"
        ) from None
    if settings.metrics_token is None:
        # /metrics names every served model and version: not for anyone on the network.
        raise ConfigError(
            f"MLOPS_METRICS_TOKEN is required when MLOPS_ENVIRONMENT={env}: /metrics lists "
            "model names and versions, so Prometheus must send this token (its scrape "
            "config's authorization.credentials_file). Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


@dataclass(frozen=True)
class AdminCreated:
    username: str
    generated_password: str | None  # set only when we made it up; print it once


async def ensure_first_admin(ctx: PlatformContext) -> AdminCreated | None:
    """Create the first admin when there are no users yet."""
    settings = ctx.settings
    async with transaction(ctx.sessions) as session:
        if await users.count_users(session=session) > 0:
            return None
        generated = None
        if settings.admin_password is not None:
            password = settings.admin_password.get_secret_value()
        else:
            if not settings.is_development:
                raise ConfigError("MLOPS_ADMIN_PASSWORD is required to create the first admin")
            password = generated = generate_password()
        try:
            await users.create_user(
                session=session,
                hasher=ctx.hasher,
                actor="system",
                username=settings.admin_username,
                password=password,
                role=Role.admin,
            )
        except Invalid as exc:
            raise ConfigError(f"MLOPS_ADMIN_PASSWORD: {exc.message}") from None
        except Conflict:
            return None  # another replica starting at the same moment created it
    return AdminCreated(settings.admin_username, generated)
