"""Alertmanager's configuration: it loads, each severity and team reaches exactly the
receivers the guide names, and no secret is written in it."""

from __future__ import annotations

import re

import pytest

from tests.monitoring.tools import ALERTMANAGER_CONFIG, load_yaml, run


def test_config_loads() -> None:
    result = run("amtool", "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "team=platform"], "critical"),
        (["severity=critical", "team=ml"], "critical"),
        (["severity=warning", "team=platform"], "slack-platform"),
        (["severity=warning", "team=ml"], "slack-ml"),
        (["severity=warning"], "slack-platform"),
        # An alert someone forgot to label still reaches people.
        (["alertname=Unlabelled"], "slack-platform"),
    ],
)
def test_routes(labels: list[str], receivers: str) -> None:
    result = run(
        "amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_critical_goes_to_pagerduty_slack_and_email_warnings_to_slack_only() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {r["name"]: r for r in config["receivers"]}
    critical = receivers["critical"]
    assert len(critical["pagerduty_configs"]) == 1
    assert [c["channel"] for c in critical["slack_configs"]] == ["#mlops-critical"]
    assert [c["to"] for c in critical["email_configs"]] == ["ops-team@company.com"]
    for name in ("slack-platform", "slack-ml"):
        assert set(receivers[name]) == {"name", "slack_configs"}, name
    assert all(
        c.get("send_resolved")
        for r in receivers.values()
        for k, v in r.items()
        if k.endswith("_configs")
        for c in v
    )


def test_secrets_are_read_from_files_never_written() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    text = ALERTMANAGER_CONFIG.read_text()
    for field in ("routing_key", "service_key", "api_url", "auth_password", "auth_secret"):
        assert re.search(rf"^\s*(smtp_|slack_)?{field}:", text, re.M) is None, field
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    (pagerduty,) = next(r for r in config["receivers"] if r["name"] == "critical")[
        "pagerduty_configs"
    ]
    assert pagerduty["routing_key_file"].startswith("/etc/alertmanager/secrets/")


def test_a_down_target_inhibits_its_latency_and_error_alerts() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    (rule,) = [
        r for r in config["inhibit_rules"] if 'alertname="MLOpsTargetDown"' in r["source_matchers"]
    ]
    assert rule["equal"] == ["job"]
    target = rule["target_matchers"][0]
    for name in ("MLOpsApiLatencyHigh", "MLOpsErrorRateHigh", "MLOpsModelLatencyHigh"):
        assert name in target
