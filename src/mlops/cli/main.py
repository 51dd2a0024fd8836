"""Entry point of the ``mlops`` command.

Every module registered here imports only light modules at its top (typer, rich, the
standard library); a command imports the server or a library inside its function, so
that ``mlops --help`` and the client commands answer at once (ADR 0009).
tests/test_imports.py runs every command's ``--help`` and fails on a heavy import.
"""

from __future__ import annotations

import typer

from mlops import __version__
from mlops.cli import backup, db, deploy, jobs, login, models, serve, users, web, worker

app = typer.Typer(
    name="mlops",
    help="MLOps platform: model registry, deployments and inference behind one API.",
    no_args_is_help=True,
    # Markdown: docstrings wrap to the terminal instead of keeping their line breaks.
    rich_markup_mode="markdown",
    add_completion=False,
)
app.command()(serve.up)
app.command()(serve.api)
app.command("model-server")(serve.model_server)
app.command()(worker.worker)
app.command()(web.web)
app.add_typer(db.app, name="db")
app.add_typer(backup.app, name="backup")
app.add_typer(users.app, name="users")
# Registered here: deploy builds on the models commands' helpers.
models.app.command()(deploy.deploy)
app.add_typer(models.app, name="models")
app.add_typer(jobs.app, name="jobs")
app.command()(login.login)
app.command()(login.logout)
app.command()(login.whoami)


@app.command()
def version() -> None:
    """Print the platform's version."""
    typer.echo(__version__)


if __name__ == "__main__":
    app()
