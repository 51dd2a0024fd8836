"""Every PromQL expression of the rules and dashboards parses, and reads only series
that something exports: the platform (catalog.PLATFORM, checked against a live scrape
in test_end_to_end.py), the cluster's exporters (catalog.EXTERNAL) or a recording rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.catalog import EXTERNAL, PLATFORM
from tests.monitoring.promql import metric_names
from tests.monitoring.tools import DASHBOARDS, MONITORING, load_yaml, rules, run


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) for every panel target."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                found.append((path.name, panel["title"], target["expr"]))
    return found


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    # promtool parses expressions as rules: one recording rule per panel query.
    queries = dashboard_queries()
    group = {
        "name": "dashboards",
        "rules": [
            {"record": f"dashboard:query_{i}", "expr": q} for i, (_, _, q) in enumerate(queries)
        ],
    }
    path = tmp_path / "dashboards.yaml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    result = run("promtool", "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(queries) >= 30


def test_every_series_read_is_exported_or_recorded() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = PLATFORM | set(EXTERNAL) | recorded
    used: dict[str, set[str]] = {}
    for rule in rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(rule.get("alert") or rule["record"])
    for file, title, expr in dashboard_queries():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"{file}: {title}")
    unknown = {name: sorted(where) for name, where in used.items() if name not in known}
    assert unknown == {}
    # The catalog lists nothing that nothing reads (it would prove nothing).
    assert (PLATFORM | set(EXTERNAL)) - set(used) == set()


def test_metric_names_reads_names_not_labels_functions_or_keywords() -> None:
    expr = (
        'sum by (job, le) (rate(a_total{route!~"/x|/y", le="0.1"}[5m])) / on (job) '
        "group_left () b:c:ratio > 14.4 * (1 - scalar(d)) unless e offset 15m or vector(0)"
    )
    assert metric_names(expr) == {"a_total", "b:c:ratio", "d", "e"}


def test_dashboards_use_the_provisioned_datasource() -> None:
    (source,) = load_yaml(MONITORING / "grafana" / "datasources.yaml")["datasources"]
    for path in DASHBOARDS:
        board: dict[str, Any] = json.loads(path.read_text())
        assert board["uid"] and board["title"].startswith("MLOps / "), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
