"""``mlops models deploy``: set how a model's traffic is served, from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlops.cli.common import console, fail
from mlops.cli.models import (
    NameArg,
    TokenOption,
    UrlOption,
    client_for,
    describe_deployment,
    reporting_errors,
)


def deploy(
    name: NameArg,
    alias: Annotated[str, typer.Option(help="The alias whose version takes the traffic.")] = (
        "production"
    ),
    canary: Annotated[
        int | None, typer.Option(min=1, help="Send --percent of the requests to this version.")
    ] = None,
    percent: Annotated[
        float, typer.Option(min=0, max=100, help="The canary's share, in %.")
    ] = 10.0,
    shadow: Annotated[
        int | None,
        typer.Option(min=1, help="Also run every request on this version (never answered)."),
    ] = None,
    guard: Annotated[
        bool, typer.Option(help="Take the canary out of traffic by itself if it breaches:")
    ] = False,
    max_error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Guard: the highest share of failed requests.")
    ] = 0.01,
    max_p95_ms: Annotated[
        float, typer.Option(min=0, help="Guard: the highest p95 runtime latency per row, in ms.")
    ] = 50.0,
    window_s: Annotated[
        float, typer.Option(min=0, help="Guard: the window both are measured over, in s.")
    ] = 60.0,
    min_requests: Annotated[
        int, typer.Option(min=1, help="Guard: canary requests in the window before it judges.")
    ] = 100,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set the deployment policy of model NAME (it replaces the current one).

    Without options, all traffic goes to the version that the alias (`production`)
    points at, which is blue-green: move or roll back the alias to switch.
    `--canary 2 --percent 10 --guard` sends 10% to version 2 and takes it out if it
    breaches the guard; `--shadow 2` also runs every request on version 2 and records
    how its answers differ.
    """
    if guard and canary is None:
        fail("--guard watches a canary: add --canary VERSION")
    policy: dict[str, Any] = {"alias": alias}
    if canary is not None:
        policy["canary"] = {"version": canary, "percent": percent}
    if shadow is not None:
        policy["shadow"] = {"version": shadow}
    if guard:
        policy["guard"] = {
            "max_error_rate": max_error_rate,
            "max_p95_ms": max_p95_ms,
            "window_s": window_s,
            "min_requests": min_requests,
        }
    with reporting_errors(), client_for(url, token) as client:
        deployment = client.set_deployment(name, policy)
    console.print(f"{name}: {describe_deployment(deployment)}")
