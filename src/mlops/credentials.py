"""Where ``mlops login`` keeps its token (file mode 600), for the CLI and the Client."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

CREDENTIALS_ENV = "MLOPS_CREDENTIALS_FILE"


def credentials_path() -> Path:
    override = os.environ.get(CREDENTIALS_ENV)
    return Path(override) if override else Path(user_config_dir("mlops")) / "credentials.json"


def save_credentials(data: dict[str, Any]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Create with 0600 before writing: the token must never be readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.chmod(path, 0o600)
    return path


def load_credentials() -> dict[str, Any] | None:
    path = credentials_path()
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
