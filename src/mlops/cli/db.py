"""``mlops db``: schema migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from mlops.cli.common import ConfigOption, console, run, settings_from

if TYPE_CHECKING:
    from mlops.config import Settings

app = typer.Typer(
    help="Database schema migrations.", no_args_is_help=True, rich_markup_mode="markdown"
)


@app.command()
def upgrade(config: ConfigOption = None) -> None:
    """Apply every pending migration (safe to run again; run it as a one-off Job)."""
    from mlops.db.schema import head_revision, upgrade_database

    settings = settings_from(config)
    upgrade_database(settings)
    console.print(f"database schema is at {head_revision()}")


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
