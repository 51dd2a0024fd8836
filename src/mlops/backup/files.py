"""Local file helpers: content hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> tuple[str, int]:
    """Hex SHA-256 and size of a file, read in chunks."""
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    return digest.hexdigest(), path.stat().st_size
