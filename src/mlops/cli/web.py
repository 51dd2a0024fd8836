"""``mlops web``: the web UI's pages alone (the guide's ``web-ui`` Deployment)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.cli.common import ConfigOption, console
from mlops.cli.serve import HostOption, _serve, _startup_settings


def web(
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8081,
) -> None:
    """Serve the web UI's pages and assets alone (for Kubernetes). Their scripts call the
    API on the same origin: the gateway sends /api/ to the API server and everything
    else here. `mlops up` serves the UI itself at /."""
    settings = _startup_settings(config, host, port)
    console.print(f"[bold green]Web UI[/] at http://{host}:{port}/ ({settings.environment})")
    _serve(settings, host, port, frozenset({"web"}))
