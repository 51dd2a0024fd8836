"""One ``mlops up`` per data directory while the platform keeps its state in process.

Without Redis, each process has its own in-process store: a logout, a user change or an
alias move made through one ``mlops up`` is not seen by a second one on the same data
directory (the same SQLite file), which would go on accepting the revoked token. The
first ``mlops up`` holds an exclusive ``flock`` on ``DATA_DIR/up.lock`` while it runs
(the kernel drops it however the process ends); a second one is refused with the
first's address.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mlops.errors import ConfigError

LOCK_FILE = "up.lock"
# Held for the life of the process: closing the descriptor would drop the lock.
_held: list[int] = []


def hold_embedded_lock(data_dir: Path, url: str) -> None:
    """Take the data directory for this process, or raise ConfigError naming the holder."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 512).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise ConfigError(
            f"another mlops up is already running on {data_dir} ({holder}). Without "
            "MLOPS_REDIS_URL each process keeps its sessions and caches to itself, so a "
            "second one would miss the first's logouts and changes. Use the running one, "
            "stop it first, or give this one its own MLOPS_DATA_DIR."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}, {url}\n".encode())
    _held.append(fd)
