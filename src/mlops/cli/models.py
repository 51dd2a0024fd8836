"""``mlops models``: the model registry from the command line, over the HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from mlops.cli.common import console, err_console, fail
from mlops.credentials import load_credentials

if TYPE_CHECKING:
    from mlops.client import Client, ProgressCallback

app = typer.Typer(
    help="Register, upload, release and download models (talks to the platform's API).",
    no_args_is_help=True,
    # Markdown: docstrings wrap to the terminal instead of keeping their line breaks.
    rich_markup_mode="markdown",
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="MLOPS_URL", help="Platform URL; defaults to the one of `mlops login`."
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MLOPS_TOKEN",
        help="Token or API key; defaults to the one kept by `mlops login`.",
        show_default=False,
    ),
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Model name.", show_default=False)]
AliasArg = Annotated[str, typer.Argument(metavar="ALIAS", help="Alias name, e.g. production.")]
NOT_LOGGED_IN = "not logged in; run `mlops login --url URL` first (or pass --url and --token)"
PICKLE_WARNING = (
    "[bold yellow]warning:[/] loading a pickle or joblib file runs any code it contains. "
    "Only convert files you trust, such as models you trained yourself."
)


def client_for(url: str | None, token: str | None) -> Client:
    """A client for --url/--token (or MLOPS_URL/MLOPS_TOKEN), else the kept login."""
    from mlops.client import Client

    creds = load_credentials()
    if creds is not None:
        kept_url = str(creds["url"]).rstrip("/")
        # The kept token goes only to the server it was issued by.
        if token is None and (url is None or url.rstrip("/") == kept_url):
            url, token = kept_url, str(creds["access_token"])
        elif url is None:
            url = kept_url
    if url is None or token is None:
        fail(NOT_LOGGED_IN)
    return Client(url, token)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """The server's message and exit 1 instead of a traceback."""
    from mlops.client import ClientError

    try:
        yield
    except ClientError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(str(exc))


@contextmanager
def _transfer(description: str) -> Iterator[ProgressCallback]:
    """A Rich byte progress bar, as a ``callback(done, total)``."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        yield update


def _parse_tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--tag expects key=value, got {item!r}")
        tags[key] = value
    return tags


def _aliases(model: dict[str, Any]) -> str:
    return ", ".join(f"{a['name']}→v{a['version']}" for a in model["aliases"])


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _signature(version: dict[str, Any], *, short: bool = False) -> str:
    sig = version["signature"]
    text = f"{sig['n_features']} {sig['input_dtype']} features → {sig['output_kind']}"
    if short:
        return text
    if sig.get("classes"):
        text += f" {sig['classes']}"
    if sig.get("has_probabilities"):
        text += " (+ probabilities)"
    return text


def describe_deployment(deployment: dict[str, Any]) -> str:
    """One line: what takes the traffic, and the canary, shadow and guard if any."""
    policy = deployment["policy"]
    primary = deployment["primary_version"]
    parts = [f"{policy['alias']}→{'v' + str(primary) if primary else '(no version)'}"]
    if policy.get("canary"):
        canary = policy["canary"]
        parts.append(f"canary v{canary['version']} {canary['percent']:g}%")
    if policy.get("shadow"):
        parts.append(f"shadow v{policy['shadow']['version']}")
    if policy.get("guard"):
        guard = policy["guard"]
        parts.append(
            f"guard (errors <= {guard['max_error_rate']:g}, "
            f"p95 <= {guard['max_p95_ms']:g} ms per row over {guard['window_s']:g} s, "
            f"from {guard['min_requests']} requests)"
        )
    rollback = deployment["status"].get("canary_rollback")
    if rollback:
        parts.append(f"canary v{rollback['version']} rolled back: {rollback['reason']}")
    return "; ".join(parts)


@app.command()
def create(
    name: NameArg,
    description: Annotated[str, typer.Option(help="What the model is for.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="key=value; repeat for more.")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Register a new model (versions are added with `mlops models push`)."""
    tags = _parse_tags(tag or [])
    with reporting_errors(), client_for(url, token) as client:
        model = client.create_model(name, description=description, tags=tags)
    console.print(f"created model [bold]{model['name']}[/]")


@app.command("list")
def list_models(
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this.")] = None,
    tag: Annotated[
        str | None, typer.Option(help="Only models with tag 'key' or 'key:value'.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List models with their latest version, aliases and tags."""
    with reporting_errors(), client_for(url, token) as client:
        page = client.list_models(prefix=prefix, tag=tag, limit=limit)
    table = Table("name", "latest", "aliases", "tags")
    for model in page["items"]:
        latest = model["latest_version"]
        table.add_row(
            model["name"],
            "" if latest is None else f"v{latest}",
            _aliases(model),
            _tags(model["tags"]),
        )
    console.print(table)
    if page["total"] > len(page["items"]):
        console.print(f"{len(page['items'])} of {page['total']} models; use --prefix or --limit")


@app.command()
def show(name: NameArg, url: UrlOption = None, token: TokenOption = None) -> None:
    """Show a model, its aliases and its versions."""
    with reporting_errors(), client_for(url, token) as client:
        model = client.get_model(name)
        page = client.list_versions(name, limit=client.MAX_PAGE)
        if page["total"] > len(page["items"]):  # show the newest
            page = client.list_versions(
                name, limit=client.MAX_PAGE, offset=page["total"] - client.MAX_PAGE
            )
        versions = page["items"]
        deployment = client.get_deployment(name)
    console.print(f"[bold]{model['name']}[/]  {model['description']}")
    if model["tags"]:
        console.print(f"tags: {_tags(model['tags'])}")
    console.print(f"aliases: {_aliases(model) or '(none)'}")
    console.print(f"deployment: {describe_deployment(deployment)}")
    table = Table("version", "format", "runtime", "aliases", "signature", "created", "by")
    for version in versions:
        table.add_row(
            f"v{version['version']}",
            version["format"],
            version["runtime"].get("serving_runtime", "-"),
            ", ".join(version["aliases"]),
            _signature(version, short=True),
            version["created_at"][:19].replace("T", " "),
            version["created_by"],
        )
    console.print(table)
    if page["total"] > len(versions):
        console.print(f"(the newest {len(versions)} of {page['total']} versions)")


@app.command()
def push(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, readable=True)
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Model to add the version to.")],
    alias: Annotated[
        str | None, typer.Option(help="Point this alias (e.g. production) at the new version.")
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="JSON file: description, tags, metrics, params, source_uri, git_commit, "
            "dataset_sha256, run_id.",
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="The version's description (overrides the metadata file's).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Upload a model file (ONNX, skops, XGBoost JSON/UBJ, LightGBM text) as a new version.

    The model is created if it does not exist yet. Pickles are refused by the
    server: convert them first with `mlops models convert`.
    """
    meta: dict[str, Any] = {}
    if metadata is not None:
        try:
            meta = json.loads(metadata.read_text())
        except ValueError as exc:
            fail(f"{metadata} is not valid JSON: {exc}")
        if not isinstance(meta, dict):
            fail(f"{metadata} must hold a JSON object")
    if description is not None:
        meta["description"] = description
    with (
        reporting_errors(),
        client_for(url, token) as client,
        _transfer(f"uploading {file.name}") as bar,
    ):
        version = client.push(file, name, alias=alias, metadata=meta, progress=bar)
    console.print(f"pushed [bold]{name}[/] v{version['version']}")
    console.print(f"  sha256:    {version['sha256']}")
    console.print(f"  format:    {version['format']} ({version['size']} bytes)")
    console.print(f"  signature: {_signature(version)}")
    if version["aliases"]:
        console.print(f"  aliases:   {', '.join(version['aliases'])}")


@app.command()
def alias(
    name: NameArg,
    alias_name: AliasArg,
    version: Annotated[int | None, typer.Argument(metavar="VERSION", min=1)] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Point ALIAS of model NAME at VERSION (a release), or remove it with --delete."""
    if delete == (version is not None):
        fail("give either VERSION or --delete")
    with reporting_errors(), client_for(url, token) as client:
        if version is None:
            client.delete_alias(name, alias_name)
            console.print(f"removed alias {alias_name} of {name}")
            return
        moved = client.set_alias(name, alias_name, version)
    _print_moved(moved)


@app.command()
def rollback(
    name: NameArg, alias_name: AliasArg, url: UrlOption = None, token: TokenOption = None
) -> None:
    """Move ALIAS back to the version it pointed at before its last move."""
    with reporting_errors(), client_for(url, token) as client:
        moved = client.rollback(name, alias_name)
    _print_moved(moved)


def _print_moved(moved: dict[str, Any]) -> None:
    before = moved["previous_version"]
    origin = f" (was v{before})" if before is not None else ""
    console.print(f"{moved['model']}@{moved['alias']} → v{moved['version']}{origin}")


@app.command()
def download(
    name: NameArg,
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1)],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=True, help="File or directory to write to."),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Download a version's model file; its sha256 is checked against the server's."""
    with reporting_errors(), client_for(url, token) as client:
        info = client.get_version(name, version)
        dest = output or Path(f"{name}-v{version}-{info['filename']}")
        if dest.is_dir():
            dest = dest / f"{name}-v{version}-{info['filename']}"
        with _transfer(f"downloading {dest.name}") as bar:
            client.download(name, version, dest, progress=bar)
    console.print(f"wrote {dest} (sha256 {info['sha256']}, verified)")


@app.command()
def convert(
    src: Annotated[
        Path,
        typer.Argument(
            metavar="SRC",
            exists=True,
            dir_okay=False,
            readable=True,
            help="A pickle or joblib file.",
        ),
    ],
    to: Annotated[Literal["onnx", "skops"], typer.Option("--to", help="onnx or skops.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Defaults to SRC with the new suffix.")
    ] = None,
    n_features: Annotated[
        int | None,
        typer.Option(min=1, help="Input width, for models that do not record it."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
) -> None:
    """Convert a pickled/joblib model you trained into ONNX or skops, on this machine.

    The platform never loads pickles; this command does, locally, so only run it
    on files you trust. Upload the result with `mlops models push`.
    """
    dest = output or src.with_suffix(f".{to}")
    if dest.exists() and not force:
        fail(f"{dest} exists; pass --force to overwrite it")
    err_console.print(PICKLE_WARNING)
    # Imported here: it pulls in xgboost and lightgbm, which the other commands do not need.
    from mlops.modelformats.convert import convert_file

    try:
        convert_file(src, dest, to, n_features=n_features)
    except Exception as exc:  # any failure on a user's file is reported, not traced
        fail(f"cannot convert {src}: {getattr(exc, 'message', None) or exc}")
    console.print(f"wrote {dest}; upload it with `mlops models push {dest} --name NAME`")
