"""System tools that some tests drive (chromium, podman, kubectl, checkov, promtool,
amtool, prometheus, alertmanager, haproxy), installed by ``scripts/ci-tools.sh`` as root.

Where one is missing, the tests that need it fail in CI (``CI`` set), so a missing
install step never passes unnoticed, and are skipped elsewhere with the reason and how
to install it, so a contributor's laptop runs the rest of the suite (``-ra`` lists
every skip at the end of the run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL = "run `bash scripts/ci-tools.sh` as root (Debian)"


def missing(what: str) -> None:
    """Fail in CI, skip elsewhere, saying what is missing and how to install it."""
    message = f"{what} is missing: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def system_tool(name: str | Path) -> str:
    """The path of a tool found on PATH (a name) or at a path."""
    found = shutil.which(str(name))
    if found is None:
        missing(str(name))
        raise AssertionError("unreachable")  # missing() always raises
    return found
