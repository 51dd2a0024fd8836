"""Alert and recording rules: they load, every alert is unit-tested both ways with
promtool, and every alert carries the labels routing needs and a runbook that exists."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.monitoring.tools import (
    PROMTOOL_TESTS,
    RULES,
    RUNBOOK_URL,
    RUNBOOKS,
    alerts,
    load_yaml,
    rules,
    run,
)


def test_rule_files_load() -> None:
    result = run("promtool", "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(case_file: object) -> None:
    result = run("promtool", "test", "rules", str(case_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """A firing case per alert and severity, and a case where it stays quiet."""
    firing: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for path in PROMTOOL_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if not expected:
                    quiet.add(check["alertname"])
                for alert in expected:
                    firing.add((check["alertname"], alert["exp_labels"]["severity"]))
    wanted = {(a["alert"], a["labels"]["severity"]) for a in alerts()}
    assert wanted - firing == set(), "alerts without a firing promtool case"
    assert {name for name, _ in wanted} - quiet == set(), "alerts without a quiet case"


def test_alerts_carry_severity_team_and_an_existing_runbook() -> None:
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["labels"]["team"] in {"platform", "ml"}, name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_URL}{name}.md", name
        assert (RUNBOOKS / f"{name}.md").is_file(), f"docs/runbooks/{name}.md is missing"


def test_the_guides_thresholds_are_the_alert_thresholds() -> None:
    """The deployment guide's "Key Metrics" table, row by row."""
    expr = {a["alert"]: " ".join(a["expr"].split()) for a in alerts()}
    assert expr["MLOpsApiLatencyHigh"].endswith("p95_5m > 0.1")
    assert expr["MLOpsErrorRateHigh"].startswith("job:mlops_http_error_ratio:rate5m > 0.01")
    assert expr["MLOpsCpuHigh"].endswith(":ratio > 0.7")
    assert expr["MLOpsMemoryHigh"].endswith(":ratio > 0.8")
    assert expr["MLOpsDatabasePoolSaturated"].endswith(":ratio > 0.8")
    assert expr["MLOpsModelLatencyHigh"].endswith("p95_5m > 0.05")
    assert expr["MLOpsFeatureDrift"].endswith("> 0.2")
    assert "14 * 86400" in expr["MLOpsCertificateExpiringSoon"]
    assert "26 * 3600" in expr["MLOpsBackupMissed"]


def test_recorded_names_are_unique_and_read_in_their_own_group() -> None:
    """A rule that reads a recorded series must sit in the recording rule's group,
    after it: groups run concurrently, so across groups it could read the previous
    evaluation (promtool caught this as a flaky value)."""
    recorded_in: dict[str, tuple[str, str]] = {}
    for path in RULES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    assert rule["record"] not in recorded_in, rule["record"]
                    recorded_in[rule["record"]] = (path.name, group["name"])
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in RULES:
        for group in load_yaml(path)["groups"]:
            here = (path.name, group["name"])
            for rule in group["rules"]:
                for name, where in recorded_in.items():
                    if name in rule["expr"]:
                        assert where == here, f"{rule.get('alert') or rule['record']} reads {name}"
                        assert name in seen[here], f"{name} is read before it is recorded"
                if "record" in rule:
                    seen[here].add(rule["record"])


def test_every_rule_file_is_in_the_rules_configmap() -> None:
    kustomization = load_yaml(RULES[0].parents[1] / "kustomization.yaml")
    (rules_map,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "prometheus-rules"
    ]
    assert sorted(rules_map["files"]) == sorted(f"rules/{p.name}" for p in RULES)
    assert len(rules()) > 0
