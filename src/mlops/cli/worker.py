"""``mlops worker``: a background worker process (the guide's ``workers`` Deployment)."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from mlops.cli.common import ConfigOption, console, run

HostOption = Annotated[
    str, typer.Option(help="Address of /health, /ready and /metrics. 0.0.0.0 in a container.")
]


def worker(
    config: ConfigOption = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8090,
) -> None:
    """Run a worker: it takes batch inference jobs and drift reports from the queue in the
    database (scale by adding processes or pods). Serves `/health`, `/ready` and `/metrics`
    (`mlops_queue_depth` is what an autoscaler follows) on --port. On SIGTERM it claims
    nothing more and finishes its shard within MLOPS_WORKER_GRACE_SECONDS, or gives it back.
    Refuses to start on an old schema."""
    # Imported here: the server stack loads only for the commands that serve.
    from mlops.cli.serve import _check_schema, _serve, _startup_settings

    settings = _startup_settings(config, host, port)
    run(_check_schema(settings))
    console.print(f"[bold green]Worker[/] (metrics at http://{host}:{port}/metrics)")
    # uvicorn raises SIGTERM again once it has shut down, with this handler in place: a
    # worker that stopped cleanly then exits 0, not -15 (a clean stop for Kubernetes).
    signal.signal(signal.SIGTERM, lambda *_: None)
    _serve(settings, host, port, frozenset({"workers"}))
