"""The upload scratch directory, ``DATA_DIR/tmp``: model files and data sets land there
while they are checked, and are removed when their request ends. A process killed
meanwhile (SIGKILL, the OOM killer) removes nothing; in Kubernetes the data dir is an
``emptyDir`` that outlives a container restart, so such files would pile up until the
volume's size limit evicts the pod.

Every API process holds a shared ``flock`` on ``DATA_DIR/tmp.lock`` while it runs, and
the kernel drops it when the process dies, however it dies. A process that starts and
gets the lock exclusively knows that no live process is using the directory, so what is
in it was left by dead ones: it empties it, then keeps the lock shared like the others.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SCRATCH_DIR = "tmp"
LOCK_FILE = "tmp.lock"
log = logging.getLogger("mlops.scratch")


@dataclass(frozen=True)
class ScratchClaim:
    """This process's share of the scratch directory; ``release`` when it stops."""

    path: Path
    swept: int
    _fd: int

    def release(self) -> None:
        os.close(self._fd)  # drops the lock


def claim_scratch(data_dir: Path) -> ScratchClaim:
    """Take a share of ``data_dir/tmp``, emptying it first when no other process has one."""
    path = data_dir / SCRATCH_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            swept = 0  # another live process uses it: its files are in flight
        else:
            swept = _empty(path)
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    if swept:
        log.warning(
            "removed %d upload temp file(s) left in %s by a process that stopped mid-upload",
            swept,
            path,
        )
    return ScratchClaim(path, swept, fd)


def _empty(path: Path) -> int:
    removed = 0
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed
