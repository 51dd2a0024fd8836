"""``mlops db``: schema migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from mlops.cli.common import ConfigOption, console, err_console, fail, run, settings_from
from mlops.errors import ConfigError

if TYPE_CHECKING:
    from mlops.config import Settings

app = typer.Typer(
    help="Database schema migrations.", no_args_is_help=True, rich_markup_mode="markdown"
)


@app.command()
def upgrade(config: ConfigOption = None) -> None:
    """Apply every pending migration (safe to run again; run it as a one-off Job). When
    no user exists yet and MLOPS_ADMIN_PASSWORD is set, create the first admin
    (MLOPS_ADMIN_USERNAME, default admin): the servers then need no admin password."""
    from mlops.bootstrap import (
        AdminCreated,
        NoAdmin,
        check_admin_password,
        ensure_first_admin_after_migration,
    )
    from mlops.db.schema import head_revision, upgrade_database

    settings = settings_from(config)
    try:
        # Before migrating: a weak password changes nothing.
        check_admin_password(settings)
    except ConfigError as exc:
        fail(str(exc), 2)
    upgrade_database(settings)
    console.print(f"database schema is at {head_revision()}")
    admin = run(ensure_first_admin_after_migration(settings))
    if isinstance(admin, AdminCreated):
        console.print(f"first admin {admin.username} created from MLOPS_ADMIN_PASSWORD")
    elif isinstance(admin, NoAdmin) and not settings.is_development:
        # Development: `mlops up` makes one with a generated password.
        err_console.print(f"[bold yellow]warning:[/] {admin.hint}")


async def _status(settings: Settings) -> tuple[bool, str]:
    from mlops.context import create_context
    from mlops.db.schema import schema_status

    ctx = create_context(settings)
    try:
        return await schema_status(ctx.engine)
    finally:
        await ctx.close()


@app.command()
def status(config: ConfigOption = None) -> None:
    """Say whether the schema is current; exit 1 if it is behind."""
    ok, detail = run(_status(settings_from(config)))
    console.print(detail)
    if not ok:
        raise typer.Exit(1)
