"""Every command block of docs/runbooks/ fenced ```bash local runs as written against
a live local platform, with the variables operations.md lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.live_server import LiveServer, clean_env

ROOT = Path(__file__).parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
BLOCK = re.compile(r"^```bash local\n(.*?)^```", re.MULTILINE | re.DOTALL)


def local_blocks() -> list[tuple[str, str]]:
    found = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for n, match in enumerate(BLOCK.finditer(path.read_text()), 1):
            found.append((f"{path.name}#{n}", match.group(1)))
    return found


def test_the_runbooks_have_local_blocks() -> None:
    names = {name.split("#")[0] for name, _ in local_blocks()}
    assert {"operations.md", "troubleshooting.md"} <= names, names
    assert len(local_blocks()) >= 5


@pytest.mark.parametrize(("name", "block"), local_blocks(), ids=[n for n, _ in local_blocks()])
def test_local_block_runs_as_written(
    name: str, block: str, live: LiveServer, live_workdir: Path, tmp_path: Path
) -> None:
    env = clean_env(
        live_workdir / "data",
        MLOPS_URL=live.url,
        MLOPS_USERNAME="admin",
        MLOPS_PASSWORD=live.admin_password,
        BACKUPS=str(tmp_path / "backups"),
        TMPDIR=str(tmp_path),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{block}\n{done.stdout}\n{done.stderr}"
