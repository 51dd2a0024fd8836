"""Writes the environment the validator's process was given to OUT as JSON, and
answers nothing (the sandbox reports that as a crash)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

Path(sys.argv[1]).write_text(json.dumps(dict(os.environ)))
