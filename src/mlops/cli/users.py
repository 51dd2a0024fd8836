"""``mlops users``: manage users directly in the database (bootstrap and recovery)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlops.auth.principal import Principal
from mlops.auth.roles import Role
from mlops.cli.common import ConfigOption, console, run, settings_from

if TYPE_CHECKING:
    from mlops.config import Settings

app = typer.Typer(
    help="Manage users in the platform's database (needs the database settings).",
    no_args_is_help=True,
    # Markdown: docstrings wrap to the terminal instead of keeping their line breaks.
    rich_markup_mode="markdown",
)
CLI_ACTOR = Principal(user_id=0, username="cli", role=Role.admin, via="token")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _reach(settings: Settings) -> str:
    """How a change made here reaches running servers (never claim more than that)."""
    if settings.redis_url:
        return "running servers apply it at once (through Redis)"
    # Servers without Redis follow the users table every second (auth/follower.py).
    return (
        "a running server on this database applies it within 2 s; servers that use Redis "
        "only hear of it if MLOPS_REDIS_URL is set here too"
    )


async def _create(settings: Settings, username: str, password: str, role: Role) -> None:
    from mlops.auth import service
    from mlops.context import create_context
    from mlops.db.session import transaction

    ctx = create_context(settings)
    try:
        async with transaction(ctx.sessions) as session:
            await service.create_user(
                session=session,
                hasher=ctx.hasher,
                actor="cli",
                username=username,
                password=password,
                role=role,
            )
    finally:
        await ctx.close()


@app.command()
def create(
    username: str,
    role: Annotated[Role, typer.Option(help="viewer, editor or admin.")] = Role.viewer,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a user (prompts for the password)."""
    settings = settings_from(config)
    run(_create(settings, username, _read_password(password_stdin), role))
    console.print(f"created user [bold]{username}[/] with role {role.value}")


async def _list(settings: Settings) -> list[tuple[str, str, bool]]:
    from mlops.auth import service
    from mlops.context import create_context
    from mlops.db.paging import ALL_ROWS
    from mlops.db.session import transaction

    ctx = create_context(settings)
    try:
        async with transaction(ctx.sessions) as session:
            users, _ = await service.list_users(session=session, page=ALL_ROWS)
            return [(u.username, u.role, u.disabled) for u in users]
    finally:
        await ctx.close()


@app.command("list")
def list_users(config: ConfigOption = None) -> None:
    """List users and their roles."""
    table = Table("username", "role", "disabled")
    for username, role, disabled in run(_list(settings_from(config))):
        table.add_row(username, role, "yes" if disabled else "")
    console.print(table)


async def _update(
    settings: Settings, username: str, role: Role | None, disabled: bool | None
) -> None:
    from mlops.auth import service
    from mlops.context import create_context
    from mlops.db.session import transaction

    ctx = create_context(settings)
    try:
        async with transaction(ctx.sessions) as session:
            await service.update_user(
                session=session,
                gate=ctx.gate,
                actor=CLI_ACTOR,
                username=username,
                role=role,
                disabled=disabled,
            )
    finally:
        await ctx.close()


@app.command("set-role")
def set_role(username: str, role: Role, config: ConfigOption = None) -> None:
    """Change a user's role; their current tokens stop working."""
    settings = settings_from(config)
    run(_update(settings, username, role, None))
    console.print(f"{username} is now {role.value}; {_reach(settings)}")


@app.command()
def disable(username: str, config: ConfigOption = None) -> None:
    """Disable a user: their tokens stop working and their API keys are revoked."""
    settings = settings_from(config)
    run(_update(settings, username, None, True))
    console.print(f"{username} is disabled; {_reach(settings)}")


@app.command()
def enable(username: str, config: ConfigOption = None) -> None:
    """Enable a disabled user again (their old API keys stay revoked)."""
    settings = settings_from(config)
    run(_update(settings, username, None, False))
    console.print(f"{username} is enabled; {_reach(settings)}")


async def _set_password(settings: Settings, username: str, password: str) -> None:
    from mlops.auth import service
    from mlops.context import create_context
    from mlops.db.session import transaction

    ctx = create_context(settings)
    try:
        async with transaction(ctx.sessions) as session:
            await service.set_password(
                session=session,
                hasher=ctx.hasher,
                gate=ctx.gate,
                actor="cli",
                username=username,
                password=password,
            )
    finally:
        await ctx.close()


@app.command("set-password")
def set_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    config: ConfigOption = None,
) -> None:
    """Reset a user's password (recovery): their current tokens stop working and their
    API keys are revoked."""
    settings = settings_from(config)
    run(_set_password(settings, username, _read_password(password_stdin)))
    console.print(f"password of {username} changed, API keys revoked; {_reach(settings)}")
