"""Helpers shared by CLI commands: settings from --config, errors as clean exits.

Every module of ``mlops.cli`` imports only light modules at its top (typer, rich,
the standard library, ``mlops.errors``): ``mlops --help`` and the client commands
must not pay for the server, database or model libraries. A command imports what it
needs inside its function; tests/test_imports.py checks this for every command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from mlops.errors import ConfigError, PlatformError

if TYPE_CHECKING:
    from mlops.config import Settings

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML settings file (see infrastructure/production/config/application.yml.template). "
        "MLOPS_* environment variables override it.",
        exists=False,
        dir_okay=False,
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    from mlops.config import load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc), 2)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning platform and config errors into a clear message and exit 1."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        fail(str(exc), 2)
    except PlatformError as exc:
        fail(exc.message)
