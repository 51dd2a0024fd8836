"""``mlops jobs``: batch inference jobs from the command line, over the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlops.cli.common import console, err_console, fail
from mlops.cli.models import TokenOption, UrlOption, client_for, reporting_errors

if TYPE_CHECKING:
    from mlops.client import Client

app = typer.Typer(
    help="Score data sets with registered models: batch inference jobs run by the workers.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
JobArg = Annotated[int, typer.Argument(metavar="JOB_ID", min=1, help="The job's id.")]
FINAL = ("succeeded", "failed", "cancelled")


def follow(client: Client, job_id: int) -> dict[str, Any]:
    """Show a progress bar of the job's rows until it ends; the final job."""
    with Progress(
        TextColumn("job {task.fields[job]} {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("job", total=None, job=job_id, status="queued")

        def update(job: dict[str, Any]) -> None:
            progress.update(
                task,
                completed=job["rows_done"],
                total=job["rows_total"],
                status=job["status"],
            )

        return client.wait_for_job(job_id, poll=0.5, on_update=update)


def _report(job: dict[str, Any]) -> None:
    if job["status"] == "succeeded":
        where = f"mlops jobs download {job['id']} FILE" if job["download"] else job["output"]
        console.print(f"job {job['id']} succeeded: {job['rows_done']} rows → {where}")
        return
    fail(f"job {job['id']} {job['status']}: {job['error'] or ''}".rstrip(": "))


@app.command()
def submit(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model name.")],
    input: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="A local CSV/Parquet/JSONL file (uploaded first), an uploaded data set's "
            "uri (datasets/...), or s3://BUCKET/KEY.",
        ),
    ],
    alias: Annotated[str | None, typer.Option(help="Alias to resolve now.")] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Exact version.")] = None,
    output: Annotated[
        str | None, typer.Option(help="s3:// or datasets/... (default: platform storage).")
    ] = None,
    format: Annotated[
        str | None, typer.Option(help="csv, parquet or jsonl (default: from the name).")
    ] = None,
    probabilities: Annotated[
        bool, typer.Option("--probabilities", help="Add probability_<class> columns.")
    ] = False,
    shard_rows: Annotated[int | None, typer.Option(min=1, help="Rows per shard.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar.")] = True,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Queue a batch inference job; with --wait (the default) follow it to the end."""
    with reporting_errors(), client_for(url, token) as client:
        source = input
        local = Path(input).expanduser()
        if "://" not in input and local.is_file():
            err_console.print(f"uploading {local} …")
            source = client.upload_dataset(local)["uri"]
        elif "://" not in input and _meant_as_local_file(input, local):
            what = "is a directory" if local.is_dir() else "does not exist"
            fail(
                f"{input} {what}: give a local CSV, Parquet or JSONL file, an uploaded "
                "data set's uri (datasets/...) or s3://BUCKET/KEY"
            )
        job = client.submit_job(
            model,
            source,
            alias=alias,
            version=version,
            output=output,
            format=format,
            return_probabilities=probabilities,
            shard_rows=shard_rows,
        )
        console.print(f"job {job['id']} queued: {model} v{job['version']} on {source}")
        if wait:
            _report(follow(client, job["id"]))


def _meant_as_local_file(text: str, path: Path) -> bool:
    """An input the platform could not hold (an absolute, home or dot path, or a bare
    file name): the user meant a file on this machine."""
    return (
        path.exists()
        or path.is_absolute()
        or text.startswith(("./", "../", "~"))
        or "/" not in text
    )


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded...")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's jobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Jobs, newest first."""
    with reporting_errors(), client_for(url, token) as client:
        page = client.list_jobs(status, model, limit=limit)
    table = Table("id", "status", "model", "rows", "created", "by")
    for job in page["items"]:
        rows = f"{job['rows_done']}/{job['rows_total'] if job['rows_total'] is not None else '?'}"
        table.add_row(
            str(job["id"]),
            job["status"],
            f"{job['model']} v{job['version']}",
            rows,
            job["created_at"][:19],
            job["created_by"],
        )
    console.print(table)
    if page["total"] > len(page["items"]):
        console.print(f"{len(page['items'])} of {page['total']} jobs")


@app.command()
def show(
    job_id: JobArg,
    follow_job: Annotated[
        bool, typer.Option("--follow", help="Follow it with a progress bar.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A job's state: rows and shards done, attempts, timings, error."""
    with reporting_errors(), client_for(url, token) as client:
        job = follow(client, job_id) if follow_job else client.get_job(job_id)
    for key in (
        "id", "status", "model", "version", "input", "output", "format", "rows_done",
        "rows_total", "shards_done", "shards_total", "attempts", "created_by",
        "created_at", "started_at", "finished_at", "error",
    ):  # fmt: skip
        if job.get(key) is not None:
            console.print(f"[bold]{key}[/]: {job[key]}")


@app.command()
def cancel(job_id: JobArg, url: UrlOption = None, token: TokenOption = None) -> None:
    """Cancel a queued or running job: no further shard starts."""
    with reporting_errors(), client_for(url, token) as client:
        job = client.cancel_job(job_id)
    console.print(f"job {job['id']} {job['status']}")


@app.command()
def download(
    job_id: JobArg,
    dest: Annotated[Path, typer.Argument(metavar="DEST", help="Where to write the output.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Download a succeeded job's output (when it is in platform storage)."""
    with reporting_errors(), client_for(url, token) as client:
        path = client.download_job_output(job_id, dest)
    console.print(f"wrote {path} ({path.stat().st_size} bytes)")
