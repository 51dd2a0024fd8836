"""Servers that cannot start safely say why before they print anything else: a port
another process holds, and a second ``mlops up`` on a data directory whose state the
first keeps in process."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.cli.live_server import MLOPS, answering, clean_env, free_port, running_up, spawn


def _run(args: list[str], data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLOPS, *args],
        env=clean_env(data_dir, COLUMNS="300"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_a_second_up_on_the_same_data_dir_is_refused_until_the_first_stops(
    tmp_path: Path,
) -> None:
    with running_up(tmp_path) as first:
        second = _run(["up", "--port", str(free_port())], tmp_path / "data")
        assert second.returncode == 2, second.stdout + second.stderr
        said = _one_line(second.stdout + second.stderr)
        assert f"another mlops up is already running on {tmp_path / 'data'}" in said
        assert first.url in said  # where the running one answers
        assert "own MLOPS_DATA_DIR" in said
        assert "password" not in said  # refused before the banner
        assert first.process.poll() is None  # the first one runs on
    # Once the first has stopped, the data directory is free again.
    port = free_port()
    log = tmp_path / "again.log"
    again = spawn(["up"], port, tmp_path / "data", log)
    with answering(again, f"http://127.0.0.1:{port}", log, what="mlops up", timeout=90):
        assert again.poll() is None


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for command in (["up"], ["web"], ["worker"]):
            done = _run([*command, "--port", str(port)], tmp_path / "data")
            said = _one_line(done.stdout + done.stderr)
            assert done.returncode == 2, said
            assert f"cannot listen on 127.0.0.1:{port}" in said
            assert "choose another port with --port" in said
            assert "MLOps platform" not in said and "Worker" not in said
    # Refused before migrating: `up` left no database behind.
    assert not (tmp_path / "data" / "mlops.db").exists()
