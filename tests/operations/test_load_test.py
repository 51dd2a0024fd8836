"""tests/performance/load_test.py against a live `mlops up`: reports, thresholds, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.live_server import LiveServer, clean_env

SCRIPT = Path(__file__).parents[1] / "performance" / "load_test.py"
GENEROUS = ["--max-p95-ms", "60000", "--max-inference-p95-ms", "60000"]


@pytest.fixture(scope="module")
def api_key(live: LiveServer) -> str:
    """Users start at once with a key (a login per user hashes a password, which takes
    seconds on a busy 2-core machine and would leave a short run without requests)."""
    login = httpx.post(
        f"{live.url}/api/v1/auth/login",
        json={"username": "admin", "password": live.admin_password},
        timeout=30,
    )
    token = login.json()["access_token"]
    created = httpx.post(
        f"{live.url}/api/v1/api-keys",
        json={"name": f"load-{uuid.uuid4().hex[:6]}", "role": "viewer"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


def load_test(
    live: LiveServer, report_dir: Path, *args: str, api_key: str
) -> tuple[int, str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--target", live.url, "--concurrent", "3",
         "--duration", "4", "--ramp", "1", "--report-dir", str(report_dir), *args],
        env=clean_env(Path("/nonexistent"), MLOPS_API_KEY=api_key),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (report_dir / "report.json").is_file(), done.stdout + done.stderr
    return done.returncode, done.stdout, json.loads((report_dir / "report.json").read_text())


def test_a_healthy_run_reports_and_passes(live: LiveServer, api_key: str, tmp_path: Path) -> None:
    code, out, report = load_test(live, tmp_path, *GENEROUS, api_key=api_key)
    assert code == 0, out
    assert "p95" in out and "error rate" in out and "PASS" in out
    predict = report["by_type"]["POST predict"]
    assert predict["requests"] > 0 and predict["failures"] == 0
    assert 0 < predict["p50_ms"] <= predict["p95_ms"] <= predict["p99_ms"]
    assert "GET registry: list models" in report["by_type"]
    assert report["measured"]["error_rate"] == 0 and report["missed"] == []
    assert "locust" in (tmp_path / "report.html").read_text().lower()


def test_a_missed_latency_threshold_fails(live: LiveServer, api_key: str, tmp_path: Path) -> None:
    code, out, report = load_test(
        live, tmp_path, "--max-p95-ms", "60000", "--max-inference-p95-ms", "0.001",
        api_key=api_key,
    )  # fmt: skip
    assert code == 1 and report["missed"] == ["inference_p95_ms"], out
    assert "FAIL: missed inference_p95_ms" in out


def test_errors_fail_the_run(live: LiveServer, tmp_path: Path) -> None:
    # A bad API key, not a bad password: failed logins would throttle this address.
    code, out, report = load_test(live, tmp_path, *GENEROUS, api_key="mlops_not_a_key")
    assert code == 1 and "error_rate" in report["missed"], out
    assert report["measured"]["error_rate"] > 0.5


def test_spike_profile(live: LiveServer, api_key: str, tmp_path: Path) -> None:
    code, out, report = load_test(live, tmp_path, *GENEROUS, "--profile", "spike", api_key=api_key)
    assert code == 0 and report["requests"] > 0, out
