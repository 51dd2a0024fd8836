"""The commands as an operator (or the backup CronJob) runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from mlops.cli.main import app
from tests.conftest import SECRET_KEY


def test_create_verify_restore_commands(sqlite_template: Path, tmp_path: Path) -> None:
    source, target, backups = tmp_path / "source", tmp_path / "target", tmp_path / "backups"
    source.mkdir()
    shutil.copy(sqlite_template, source / "mlops.db")
    runner = CliRunner()

    def mlops(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
        env = {"MLOPS_DATA_DIR": str(data_dir), "MLOPS_SECRET_KEY": SECRET_KEY}
        result = runner.invoke(app, list(args), env=env, input=stdin)
        return result.exit_code, result.output

    password = "Backup-Operator-Passphrase-7\n"
    code, out = mlops(
        source, "users", "create", "ops", "--role", "viewer", "--password-stdin", stdin=password
    )
    assert code == 0, out
    code, out = mlops(source, "backup", "create", str(backups))
    assert code == 0, out
    assert f"backup written to {backups}/" in out
    code, out = mlops(source, "backup", "verify", str(backups))
    assert code == 0 and "is complete and intact" in out, out
    code, out = mlops(target, "backup", "restore", str(backups))
    assert code == 0 and "restored" in out and "1 users" in out, out
    assert (target / "mlops.db").is_file()
    code, out = mlops(target, "backup", "restore", str(backups))
    assert code == 1 and "not empty" in out and "--force" in out, out
    code, out = mlops(target, "backup", "restore", str(tmp_path / "nowhere"))
    assert code == 1 and "is not a directory" in out, out
    code, out = mlops(target, "backup", "restore", "--force", str(backups))
    assert code == 0, out


def test_the_database_password_never_reaches_a_command_line() -> None:
    """pg_dump, pg_restore and psql see the password in PGPASSWORD only: a command
    line is visible to every user of the machine (ps, /proc/<pid>/cmdline)."""
    from mlops.backup.postgres import libpq_connection
    from mlops.config import load_settings

    settings = load_settings(
        database_url="postgresql://mlops:s3cret-Pa55@db.internal:5433/mlops_prod?sslmode=require",
        secret_key=SECRET_KEY,
    )
    conninfo, env = libpq_connection(settings)
    assert "s3cret-Pa55" not in conninfo
    assert env["PGPASSWORD"] == "s3cret-Pa55"
    assert "host=db.internal" in conninfo and "port=5433" in conninfo
    assert "dbname=mlops_prod" in conninfo and "sslmode=require" in conninfo
