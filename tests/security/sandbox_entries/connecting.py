"""The real validator's process (limits, audit hook) with a validation that opens a
TCP connection to 127.0.0.1:PORT, as a model library with a hostile file might."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from mlops.registry import sandbox_child

port = int(sys.argv[1])


def connect(path: Path, filename: str) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
    return {}


sys.argv = sys.argv[:1]
sys.exit(sandbox_child.main(inspect=connect))
