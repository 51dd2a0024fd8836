"""The upload scratch directory is emptied only when no live process uses it (the
drill that kills an upload is tests/drills/test_killed_upload.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlops.scratch import claim_scratch


def test_a_start_empties_what_dead_processes_left(tmp_path: Path) -> None:
    # A process that took its share and died without a word (SIGKILL) mid-upload.
    code = (
        "import os, sys; from pathlib import Path; from mlops.scratch import claim_scratch; "
        "claim = claim_scratch(Path(sys.argv[1])); "
        "(claim.path / 'upload-left').write_bytes(b'x'); os.kill(os.getpid(), 9)"
    )
    died = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert died.returncode == -9
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["upload-left"]

    claim = claim_scratch(tmp_path)
    try:
        assert claim.swept == 1
        assert list(claim.path.iterdir()) == []
    finally:
        claim.release()


def test_a_start_leaves_files_alone_while_another_process_uses_them(tmp_path: Path) -> None:
    running = claim_scratch(tmp_path)
    in_flight = running.path / "upload-in-flight"
    in_flight.write_bytes(b"x")
    starting = claim_scratch(tmp_path)  # its own open file: a lock of its own
    try:
        assert starting.swept == 0
        assert in_flight.exists()
    finally:
        starting.release()
        running.release()
    later = claim_scratch(tmp_path)  # both gone: what is left is nobody's
    try:
        assert later.swept == 1 and not in_flight.exists()
    finally:
        later.release()
