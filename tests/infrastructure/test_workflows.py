"""The GitHub workflows: valid against the workflow schema (check-jsonschema's
vendored copy, offline) and clean under actionlint; the deploy workflow does what
the guide shows, with names that exist in the bundle."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infrastructure.bundle import ROOT, find, pod_template, rendered

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "production-deploy.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_schema_and_actionlint(workflow: Path) -> None:
    schema = _run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        str(workflow),
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = _run(str(BIN / "actionlint"), "-no-color", str(workflow))
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_linters_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github/workflows/production-deploy.yml").read_text()
    broken.write_text(text.replace("needs.build.outputs.image", "needs.biuld.outputs.image"))
    assert _run(str(BIN / "actionlint"), "-no-color", str(broken)).returncode != 0
    broken.write_text(text.replace("runs-on:", "run-on:"))
    schema = _run(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)
    )
    assert schema.returncode != 0


def _steps(workflow: dict[str, Any], job: str) -> str:
    return "\n".join(s.get("run", "") for s in workflow["jobs"][job]["steps"])


def test_deploy_workflow_follows_the_guide() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/production-deploy.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads `on` as True
    deploy = _steps(workflow, "deploy")
    docs = rendered()
    # kubectl set image deployment/<name> <container>=...: each container exists.
    names = re.search(r"for name in ([\w -]+); do\n\s+kubectl set image", deploy)
    assert names is not None
    for name in names.group(1).split():
        container = pod_template(find(docs, "Deployment", name))["spec"]["containers"][0]
        assert container["name"] == name
    assert "kubectl rollout status" in deploy
    assert "python smoke_tests.py --environment production" in deploy
    assert "job/db-migrate" in deploy and deploy.index("db-migrate") < deploy.index("set image")
    (rollback,) = [s for s in workflow["jobs"]["deploy"]["steps"] if s.get("if") == "failure()"]
    assert "kubectl rollout undo" in rollback["run"]
    build = _steps(workflow, "build")
    assert "podman build -f Containerfile" in build and "--digestfile" in build


def test_ci_workflow_runs_ci_run() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert "main/.ci/run" in _steps(workflow, "ci")
