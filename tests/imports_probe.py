"""Which heavy libraries a piece of code imports, run in a fresh interpreter.

A count of modules, not a timing: deterministic on a busy machine, and a new
top-level import of a server or model library fails the test that uses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# Web, database, cloud and model libraries: none belongs in `mlops --help`.
HEAVY = frozenset(
    {
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "boto3",
        "botocore",
        "numpy",
        "sklearn",
        "skops",
        "lightgbm",
        "xgboost",
        "onnx",
        "onnxruntime",
        "scipy",
        "psycopg",
        "redis",
    }
)
MODEL_LIBRARIES = frozenset({"sklearn", "skops", "scipy", "lightgbm", "xgboost", "skl2onnx"})
SERVER_LIBRARIES = HEAVY - MODEL_LIBRARIES - {"numpy", "onnx", "onnxruntime"}

_REPORT = """
import json as _json, sys as _sys
with open(_sys.argv[1], "w") as _out:
    _json.dump({"modules": sorted(_sys.modules), "exit": _exit}, _out)
"""


def run_probe(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 180
) -> tuple[set[str], dict[str, object]]:
    """Run ``code`` in a new interpreter (``SystemExit`` caught into ``_exit``); return
    the top-level packages it left imported, and the report (``exit``, ``modules``).
    ``code`` may set ``_exit`` itself; it starts as None."""
    body = "_exit = None\ntry:\n" + textwrap.indent(textwrap.dedent(code), "    ")
    body += "\nexcept SystemExit as _stop:\n    _exit = _stop.code\n" + _REPORT
    with tempfile.TemporaryDirectory(prefix="imports-probe-") as tmp:
        report_path = Path(tmp) / "report.json"
        done = subprocess.run(
            [sys.executable, "-c", body, str(report_path)],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0 or not report_path.exists():
            raise AssertionError(f"probe failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        report: dict[str, object] = json.loads(report_path.read_text())
    modules = report["modules"]
    assert isinstance(modules, list)
    return {str(name).split(".")[0] for name in modules}, report
