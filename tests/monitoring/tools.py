"""Paths and binaries the monitoring tests share.

The binaries are Debian's `prometheus` and `prometheus-alertmanager` packages
(`bash scripts/ci-tools.sh` installs them, and .ci/run calls it). A missing one fails
the test in CI and skips it elsewhere, with that instruction (tests/system_tools.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infrastructure" / "production" / "monitoring"
RULES = sorted((MONITORING / "rules").glob("*.yaml"))
PROMTOOL_TESTS = sorted((Path(__file__).parent / "promtool").glob("*_test.yaml"))
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_URL = "https://github.com/company/mlops-platform/blob/main/docs/runbooks/"


def binary(name: str) -> str:
    return system_tool(name)


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a tool; the result's stdout and stderr are kept for the assertion message."""
    return subprocess.run(
        [binary(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout, check=False
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    """Every rule of every rule file, each with the name of its file under ``_file``."""
    found = []
    for path in RULES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                found.append({**rule, "_file": path.name})
    return found


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]
