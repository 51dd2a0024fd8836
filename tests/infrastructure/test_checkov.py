"""checkov on the built bundle (base and staging): no failed check, and every check
we skip carries its reason next to it (a checkov.io/skip annotation)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infrastructure.bundle import rendered, workloads
from tests.system_tools import system_tool

CHECKOV_VERSION = "3.3.30"  # scripts/ci-tools.sh installs it
CHECKOV = (
    Path(os.environ.get("MLOPS_CI_CACHE", "/var/cache/mlops-ci"))
    / f"checkov-{CHECKOV_VERSION}"
    / "bin"
    / "checkov"
)


@pytest.mark.parametrize("overlay", ["production", "staging"])
def test_checkov_finds_nothing(overlay: str, tmp_path: Path) -> None:
    checkov = system_tool(CHECKOV)
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(yaml.safe_dump_all(rendered(overlay)))
    out = subprocess.run(
        # --skip-download: never contact the vendor's platform.
        [
            checkov,
            "-f",
            str(bundle),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    report = json.loads(out.stdout)
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["passed"] > 500
    assert out.returncode == 0, out.stderr


def test_every_skipped_check_says_why() -> None:
    skips = 0
    for workload in workloads(rendered()):
        for name, value in workload["metadata"].get("annotations", {}).items():
            if name.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert check.startswith("CKV_K8S_") and len(reason.split()) >= 8, value
                skips += 1
    assert skips > 0
