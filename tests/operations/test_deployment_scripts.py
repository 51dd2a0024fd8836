"""verify_deployment.py and smoke_tests.py against a live `mlops up`, as the guide runs
them, and a failing case for each kind of check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cli.live_server import LiveServer, clean_env, free_port

SCRIPTS = Path(__file__).parents[1] / "deployment"


def script(name: str, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    # From the scripts' own directory, as the guide does (cd tests/deployment), and with
    # -S: no site-packages, as a bare `python` in the CI deploy job has none.
    done = subprocess.run(
        [sys.executable, "-S", name, "--json", *args],
        cwd=SCRIPTS,
        env=clean_env(Path("/nonexistent"), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in report["checks"]}


def test_verify_passes_on_a_healthy_platform(live: LiveServer) -> None:
    code, report = script(
        "verify_deployment.py", "--base-url", live.url,
        MLOPS_USERNAME="admin", MLOPS_PASSWORD=live.admin_password,
    )  # fmt: skip
    assert code == 0 and report["ok"], report
    assert by_name(report)["default model"]["detail"] == "demo ready"


def test_verify_catches_a_wrong_password_and_stopped_servers(live: LiveServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    code, report = script(
        "verify_deployment.py", "--base-url", live.url, "--model-url", dead, "--web-url", dead,
        MLOPS_USERNAME="admin", MLOPS_PASSWORD="wrong-password-42",
    )  # fmt: skip
    checks = by_name(report)
    assert code == 1 and not report["ok"]
    assert not checks["login"]["ok"] and "401" in checks["login"]["detail"]
    assert not checks["model server /v2/health/ready"]["ok"]
    assert not checks["web UI /health"]["ok"]
    assert checks["api /health"]["ok"] and checks["api /ready"]["ok"]


def test_verify_catches_a_platform_that_is_down() -> None:
    code, report = script(
        "verify_deployment.py", "--base-url", f"http://127.0.0.1:{free_port()}",
        MLOPS_API_KEY="mlops_nothing",
    )  # fmt: skip
    assert code == 1 and not any(c["ok"] for c in report["checks"]), report


def test_smoke_journeys_including_writes(live: LiveServer) -> None:
    code, report = script(
        "smoke_tests.py", "--base-url", live.url, "--allow-writes",
        MLOPS_USERNAME="admin", MLOPS_PASSWORD=live.admin_password,
    )  # fmt: skip
    assert code == 0 and report["ok"], report
    assert "rolled back to v1" in by_name(report)["register, release, roll back"]["detail"]
    again, _ = script(  # idempotent: a second run passes too
        "smoke_tests.py", "--base-url", live.url,
        MLOPS_USERNAME="admin", MLOPS_PASSWORD=live.admin_password,
    )  # fmt: skip
    assert again == 0


def test_smoke_fails_without_valid_credentials(live: LiveServer) -> None:
    code, report = script("smoke_tests.py", "--base-url", live.url, MLOPS_API_KEY="mlops_bad")
    assert code == 1
    assert not by_name(report)["login"]["ok"] or not by_name(report)["list models"]["ok"]


def test_environments_file_reads_as_yaml_does() -> None:
    """The scripts read environments.yaml without PyYAML: the same as PyYAML reads it."""
    import yaml

    from tests.deployment.deployment_checks import ENVIRONMENTS, read_environments

    text = ENVIRONMENTS.read_text()
    assert read_environments(text) == yaml.safe_load(text)
    assert {"production", "staging", "local"} <= set(read_environments(text))
