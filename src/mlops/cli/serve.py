"""Starting servers: ``mlops up`` (everything, embedded defaults) and ``mlops api``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlops.cli.common import ConfigOption, console, err_console, fail, run, settings_from
from mlops.errors import ConfigError

if TYPE_CHECKING:
    from mlops.bootstrap import AdminCreated, NoAdmin
    from mlops.config import Settings

# What a process serves (mlops.api.app.ALL_COMPONENTS), named here so that importing
# this module does not import the server.
ALL_COMPONENTS = frozenset({"api", "serving"})

HostOption = Annotated[
    str, typer.Option(help="Address to listen on. Use 0.0.0.0 inside a container.")
]


async def _prepare(
    settings: Settings, *, migrate: bool, demo: bool = False
) -> AdminCreated | NoAdmin | None:
    from mlops.bootstrap import AdminCreated, ensure_first_admin
    from mlops.context import create_context
    from mlops.db.schema import schema_status, upgrade_database

    if migrate:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ctx = create_context(settings)
    try:
        ok, detail = await schema_status(ctx.engine)
        if not ok and migrate:
            # Only now Alembic, which costs half a second to import: a restart on a
            # current schema does without it.
            await asyncio.to_thread(upgrade_database, settings)
            ok, detail = await schema_status(ctx.engine)
        if not ok:
            raise ConfigError(detail)
        admin = await ensure_first_admin(ctx)
        # The first start in development gets the demo model, as if --demo was given.
        if demo or (isinstance(admin, AdminCreated) and settings.is_development):
            from mlops.registry.demo import register_demo_model

            if await register_demo_model(ctx):
                console.print(
                    "  Registered the demo model [bold]demo[/] (alias production, default model)."
                )
        return admin
    finally:
        await ctx.close()


def _serve(
    settings: Settings, host: str, port: int, components: frozenset[str] = ALL_COMPONENTS
) -> None:
    import uvicorn

    from mlops.api.app import create_app
    from mlops.cli.graceful import GracefulServer
    from mlops.observability.logs import uvicorn_log_config

    app = create_app(settings, components=components)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=uvicorn_log_config(),
        access_log=False,
        # The app resolves the client from MLOPS_TRUSTED_PROXIES (api/forwarded.py);
        # uvicorn's own X-Forwarded-For handling would trust 127.0.0.1 whatever it says.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
    GracefulServer(config, app, settings.shutdown_delay_seconds).run()


def _announce(
    settings: Settings,
    host: str,
    port: int,
    admin: AdminCreated | NoAdmin | None,
    *,
    ui: bool = False,
) -> None:
    from mlops.bootstrap import AdminCreated, NoAdmin

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown_host}:{port}"
    if ui:
        # First: the address a person opens.
        console.print(f"[bold green]Web UI[/]:    [bold]{url}/[/] (sign in as below)")
    console.print(f"[bold green]MLOps platform[/] ({settings.environment}) at [bold]{url}[/]")
    console.print(f"  API docs:  {url}/docs")
    if isinstance(admin, NoAdmin):
        # Logged too (JSON lines in production), where an operator looks.
        logging.getLogger("mlops.bootstrap").warning(admin.hint)
    if isinstance(admin, AdminCreated) and admin.generated_password:
        console.print(
            f"  First admin [bold]{admin.username}[/] created with password "
            f"[bold yellow]{admin.generated_password}[/]\n"
            "  It is shown only this once: keep it, or change it with "
            "POST /api/v1/users/me/password."
        )
    elif isinstance(admin, AdminCreated):
        console.print(f"  First admin [bold]{admin.username}[/] created from MLOPS_ADMIN_PASSWORD.")
    # Double quotes around the header, so a shell expands $TOKEN when this is pasted.
    console.print(
        f"  Log in:    TOKEN=$(curl -s -X POST {url}/api/v1/auth/login "
        "-H 'Content-Type: application/json' "
        f'-d \'{{"username":"{settings.admin_username}","password":"..."}}\' '
        "| python3 -c 'import sys,json; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f"  or:        mlops login --url {url}\n"
        f"  Predict:   curl -X POST {url}/api/v1/models/predict "
        '-H "Authorization: Bearer $TOKEN" '
        "-H 'Content-Type: application/json' -d '{\"data\": [[1,2,3,4,5]]}'"
    )


def _check_port(host: str, port: int) -> None:
    """Exit 2 with a plain message when the address is taken, before anything starts
    (uvicorn would say so only after the banner and the migrations)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port in TIME_WAIT is not "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}. Is another server "
                "running there? Stop it, or choose another port with --port.",
                2,
            )


def _startup_settings(
    config: Path | None, host: str, port: int, *, creates_admin: bool = False
) -> Settings:
    """Settings for a server process, logging configured; exit 2 when they are unsafe or
    the address to listen on is taken."""
    from mlops.bootstrap import check_startup_settings
    from mlops.observability.logs import configure_logging

    settings = settings_from(config)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        check_startup_settings(settings, creates_admin=creates_admin)
    except ConfigError as exc:
        fail(str(exc), 2)
    _check_port(host, port)
    return settings


def up(
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Register the demo model (done anyway on first start).")
    ] = False,
) -> None:
    """Run the whole platform on this machine: migrates the database, creates the first
    admin, then serves the API. Defaults: SQLite, in-process cache, local files."""
    settings = _startup_settings(config, host, port, creates_admin=True)
    if settings.redis_url is None:
        from mlops.embedded_lock import hold_embedded_lock

        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            hold_embedded_lock(settings.data_dir, f"http://{host}:{port}")
        except ConfigError as exc:
            fail(str(exc), 2)
    admin = run(_prepare(settings, migrate=True, demo=demo))
    _announce(settings, host, port, admin, ui=True)
    # One worker runs beside the API and the model server: jobs need nothing else.
    _serve(settings, host, port, ALL_COMPONENTS | {"workers", "web"})


def api(
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Run the API server alone (for Kubernetes). Refuses to start on an old schema:
    run `mlops db upgrade` first (a one-off Job), which also makes the first admin from
    MLOPS_ADMIN_PASSWORD; this process does not need that password."""
    settings = _startup_settings(config, host, port)
    _check_shared_state(settings, "the API server")
    admin = run(_prepare(settings, migrate=False))
    _announce(settings, host, port, admin)
    _serve(settings, host, port, frozenset({"api"}))


def model_server(
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
) -> None:
    """Run the model server alone (for Kubernetes): REST predict and the Open Inference
    Protocol, on the same paths as in `mlops up`. Refuses to start on an old schema."""
    settings = _startup_settings(config, host, port)
    _check_shared_state(settings, "the model server")
    run(_check_schema(settings))
    console.print(f"[bold green]Model server[/] at http://{host}:{port} ({settings.environment})")
    _serve(settings, host, port, frozenset({"serving"}))


def _check_shared_state(settings: Settings, role: str) -> None:
    """A process that runs apart from the others needs Redis to hear what they change."""
    if settings.redis_url is not None:
        return
    message = (
        f"{role} runs as its own process but MLOPS_REDIS_URL is unset: logouts, user "
        "changes, alias moves, deployment policies and canary rollbacks made by other "
        "processes reach it late (registry changes by polling the database every "
        f"{settings.catalog_poll_seconds:g} s, MLOPS_CATALOG_POLL_SECONDS; cached tokens and "
        "users after their cache time). Set MLOPS_REDIS_URL, or run `mlops up`."
    )
    if not settings.is_development:
        fail(message, 2)
    err_console.print(f"[bold yellow]warning:[/] {message}")


async def _check_schema(settings: Settings) -> None:
    from mlops.context import create_context
    from mlops.db.schema import schema_status

    ctx = create_context(settings)
    try:
        ok, detail = await schema_status(ctx.engine)
        if not ok:
            raise ConfigError(detail)
    finally:
        await ctx.close()
