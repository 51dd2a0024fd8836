"""End to end with real binaries: a live platform (`mlops up` on PostgreSQL and a
Redis this test owns), Prometheus scraping it with the metrics token and the
repository's rules (time shortened, stack.py), Alertmanager with the repository's
routes delivering to a local webhook.

A Redis outage makes logins answer 503: past 1 % of requests the error-rate alert
fires, reaches the critical receiver with its labels and runbook, and resolves once
Redis is back and traffic is healthy.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops.client import Client
from tests.cli.live_server import LiveServer, running_up
from tests.monitoring.catalog import PLATFORM
from tests.monitoring.stack import (
    Notification,
    WebhookReceiver,
    start_alertmanager,
    start_prometheus,
)
from tests.monitoring.test_promql import dashboard_queries
from tests.monitoring.tools import RUNBOOK_URL
from tests.throwaway import ThrowawayRedis

PG_ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432"
ALERT = "MLOpsErrorRateHigh"
# Panels that have nothing to show on one machine with a fresh platform, and why.
NO_DATA_HERE = {
    "mlops_cpu_usage_of_limit": "container limits exist in Kubernetes only (kube-state-metrics)",
    "mlops_memory_usage_of_limit": "container limits exist in Kubernetes only",
    "mlops_feature_drift_psi": "no drift report (needs a reference data set)",
    "mlops_prediction_drift_psi": "no drift report (needs a reference data set)",
}


@dataclass
class Stack:
    platform: LiveServer
    token: str
    metrics_token: str
    prometheus: str
    alertmanager: str
    webhook: WebhookReceiver
    redis: ThrowawayRedis

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = answer.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_series(self, expr: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.query(expr):
            assert time.monotonic() < deadline, f"{expr} has no data after {timeout} s"
            time.sleep(0.5)

    def predict(self, times: int) -> None:
        for i in range(times):
            answer = httpx.post(
                f"{self.platform.url}/api/v1/models/predict",
                json={"data": [[1, 2, 3, 4, 5]]},
                # Spread over canary and primary when a canary is deployed.
                headers={**self.auth(), "X-Routing-Key": f"caller-{i}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("monitoring")
    admin_url = os.environ.get("MLOPS_TEST_POSTGRES_URL", PG_ADMIN_URL_DEFAULT)
    database = f"mlops_monitoring_{uuid.uuid4().hex[:8]}"
    with ExitStack() as cleanup:
        try:
            admin = psycopg.connect(f"{admin_url}/postgres", autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            # Production's shape (the pool and Redis metrics need it), as the guide runs.
            pytest.fail(f"the monitoring end-to-end test needs PostgreSQL at {admin_url}: {exc}")
        with admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        cleanup.callback(_drop_database, admin_url, database)
        (workdir / "redis").mkdir()
        redis = ThrowawayRedis(workdir / "redis")
        redis.start()
        cleanup.callback(redis.kill)
        metrics_token = secrets.token_urlsafe(32)
        platform = cleanup.enter_context(
            running_up(
                workdir,
                env={
                    "MLOPS_DATABASE_URL": f"{admin_url}/{database}",
                    "MLOPS_REDIS_URL": redis.url,
                    "MLOPS_METRICS_TOKEN": metrics_token,
                },
            )
        )
        login = httpx.post(
            f"{platform.url}/api/v1/auth/login",
            json={"username": "admin", "password": platform.admin_password},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        webhook = WebhookReceiver()
        webhook.start()
        cleanup.callback(webhook.stop)
        alertmanager, alertmanager_url = start_alertmanager(workdir, webhook.port)
        cleanup.callback(alertmanager.stop)
        prometheus, prometheus_url = start_prometheus(
            workdir,
            target=platform.url.removeprefix("http://"),
            token=metrics_token,
            alertmanager_url=alertmanager_url,
        )
        cleanup.callback(prometheus.stop)
        result = Stack(
            platform=platform,
            token=login.json()["access_token"],
            metrics_token=metrics_token,
            prometheus=prometheus_url,
            alertmanager=alertmanager_url,
            webhook=webhook,
            redis=redis,
        )
        result.wait_for_series('up{job="mlops"} == 1')
        yield result


def _drop_database(admin_url: str, database: str) -> None:
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_a_live_scrape_exports_every_platform_metric_the_rules_read(stack: Stack) -> None:
    refused = httpx.get(f"{stack.platform.url}/metrics", timeout=10)
    assert refused.status_code == 401
    answer = httpx.get(
        f"{stack.platform.url}/metrics",
        headers={"Authorization": f"Bearer {stack.metrics_token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(answer.text):
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_count", "_sum"],
        }.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    assert PLATFORM - names == set()
    # And Prometheus, with the token from its file, stores them.
    assert stack.query('process_cpu_seconds_total{job="mlops"}')


def _is(alertname: str, status: str) -> Any:
    def match(notification: Notification) -> bool:
        return any(
            a["labels"]["alertname"] == alertname and a["status"] == status
            for a in notification.body["alerts"]
        )

    return match


def test_failing_requests_fire_the_error_rate_alert_and_it_resolves(stack: Stack) -> None:
    statuses: list[int] = []

    def failing_logins() -> None:
        for _ in range(3):
            answer = httpx.post(
                f"{stack.platform.url}/api/v1/auth/login",
                json={"username": "admin", "password": stack.platform.admin_password},
                timeout=30,
            )
            statuses.append(answer.status_code)

    stack.redis.kill()
    try:
        fired = stack.webhook.wait_for(_is(ALERT, "firing"), timeout=120, between=failing_logins)
    finally:
        stack.redis.start()
    assert 503 in statuses
    assert fired.receiver == "critical"
    assert fired.body["receiver"] == "critical"
    (alert,) = [a for a in fired.body["alerts"] if a["labels"]["alertname"] == ALERT]
    assert alert["labels"] == {
        "alertname": ALERT,
        "job": "mlops",
        "severity": "critical",
        "team": "platform",
    }
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_URL}{ALERT}.md"
    assert alert["annotations"]["summary"] == "mlops: more than 1 % of requests fail"
    assert (Path(__file__).parents[2] / "docs" / "runbooks" / f"{ALERT}.md").is_file()

    def healthy_calls() -> None:
        for _ in range(3):
            httpx.get(f"{stack.platform.url}/api/v1/models", headers=stack.auth(), timeout=30)

    stack.webhook.wait_for(_is(ALERT, "resolved"), timeout=120, between=healthy_calls)
    # Routed to the critical receiver only: no warning channel heard of it.
    heard = {n.receiver for n in stack.webhook.received if _is(ALERT, "firing")(n)}
    assert heard == {"critical"}


def test_every_dashboard_query_runs_and_returns_data(stack: Stack, tmp_path: Path) -> None:
    with Client(stack.platform.url, stack.token) as client:
        # Versions 2 and 3 (the demo model's bytes again) as canary and shadow, so the
        # traffic split panels have all three kinds of traffic.
        model_file = client.download("demo", 1, tmp_path / "demo.skops")
        canary = client.push(model_file, "demo")["version"]
        shadow = client.push(model_file, "demo")["version"]
        client.set_deployment(
            "demo", {"canary": {"version": canary, "percent": 50}, "shadow": {"version": shadow}}
        )
    deadline = time.monotonic() + 60
    while not (
        stack.query("mlops_canary_requests_total > 0")
        and stack.query("mlops_shadow_requests_total > 0")
    ):
        assert time.monotonic() < deadline, "no canary or shadow traffic after 60 s"
        stack.predict(10)
        time.sleep(0.5)
    stack.predict(20)
    # A small batch job, so the workers' panels have a finished job to show.
    rows = tmp_path / "rows.csv"
    rows.write_text("f0,f1,f2,f3,f4\n" + "".join(f"{i},1,2,3,4\n" for i in range(20)))
    with Client(stack.platform.url, stack.token) as client:
        job = client.submit_job("demo", client.upload_dataset(rows)["uri"])
        assert client.wait_for_job(job["id"], poll=0.2, timeout=120)["status"] == "succeeded"
    stack.wait_for_series("job_model_version:mlops_predictions:rate5m > 0")
    stack.wait_for_series('mlops_jobs_total{status="succeeded"} > 0')
    empty = []
    for file, title, expr in dashboard_queries():
        result = stack.query(expr)
        if not result and not any(key in expr for key in NO_DATA_HERE):
            empty.append(f"{file}: {title}: {expr}")
    assert empty == []
    queries = " ".join(expr for _, _, expr in dashboard_queries())
    assert [key for key in NO_DATA_HERE if key not in queries] == []


def test_a_down_target_silences_its_latency_alerts(stack: Stack) -> None:
    def alert(name: str, job: str, severity: str) -> dict[str, Any]:
        labels = {"alertname": name, "job": job, "severity": severity, "team": "platform"}
        return {"labels": labels}

    posted = httpx.post(
        f"{stack.alertmanager}/api/v2/alerts",
        json=[
            alert("MLOpsTargetDown", "inhibit-test", "critical"),
            alert("MLOpsApiLatencyHigh", "inhibit-test", "warning"),
            alert("MLOpsApiLatencyHigh", "other-job", "warning"),
        ],
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{stack.alertmanager}/api/v2/alerts",
            params={"filter": 'alertname="MLOpsApiLatencyHigh"'},
            timeout=10,
        )
        states = {a["labels"]["job"]: a["status"] for a in answer.json()}
        if states.get("inhibit-test", {}).get("inhibitedBy"):
            break
        assert time.monotonic() < deadline, json.dumps(states)
        time.sleep(0.5)
    assert states["inhibit-test"]["state"] == "suppressed"
    assert states["other-job"]["state"] == "active"
    assert states["other-job"]["inhibitedBy"] == []
