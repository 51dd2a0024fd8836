"""``mlops backup``: the whole platform state (database and stored objects) to a
directory or an ``s3://`` prefix, checked, and back."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops.cli.common import ConfigOption, console, err_console, run, settings_from

app = typer.Typer(
    help="Back up, verify and restore the platform (database and model artifacts).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
Location = Annotated[
    str, typer.Argument(metavar="LOCATION", help="A directory or an s3://bucket/prefix.")
]


def _summary(counts: dict[str, int], objects: int) -> str:
    shown = ", ".join(
        f"{counts.get(t, 0)} {t}"
        for t in ("users", "api_keys", "registered_models", "model_versions")
    )
    return f"{shown}, {objects} objects"


@app.command()
def create(dest: Location, config: ConfigOption = None) -> None:
    """Back up into a new folder DEST/<UTC time>/ (prints it); consistent while the
    platform runs. Records the time for `mlops_backup_last_success_timestamp_seconds`."""
    from mlops.backup.create import create_backup

    settings = settings_from(config)
    location, manifest = run(
        create_backup(settings, dest, progress=lambda line: err_console.print(line, style="dim"))
    )
    console.print(f"backup written to {location}")
    console.print(
        f"schema {manifest.schema_revision}: {_summary(manifest.counts, len(manifest.objects))}"
    )


@app.command()
def verify(src: Location, config: ConfigOption = None) -> None:
    """Check a backup (SRC, or the latest under SRC) byte for byte without restoring it;
    exit 1 naming what is wrong."""
    from mlops.backup.verify import verify_backup

    location, manifest = run(verify_backup(settings_from(config), src))
    console.print(f"backup {location} is complete and intact")
    console.print(
        f"made {manifest.created_at} by platform {manifest.platform_version}, "
        f"{manifest.dialect} schema {manifest.schema_revision}: "
        f"{_summary(manifest.counts, len(manifest.objects))}"
    )


@app.command()
def restore(
    src: Location,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a platform that already holds data."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Restore SRC (or the latest backup under SRC) into the platform the settings name.
    Stop the platform's processes first. Refuses, changing nothing, a corrupt or
    unfinished backup, one from a newer schema or the other database shape, and a
    non-empty platform without --force."""
    from mlops.backup.restore import restore_backup

    done = run(restore_backup(settings_from(config), src, force=force))
    console.print(f"restored {done.location}")
    console.print(_summary(done.manifest.counts, len(done.manifest.objects)))
    if done.needs_upgrade:
        console.print(
            f"the backup's schema is {done.manifest.schema_revision}: run `mlops db upgrade` "
            "before starting the platform"
        )
