"""The monitoring manifests: Kustomize builds them, they validate against Kubernetes'
schemas, the ConfigMaps carry the very bytes the other tests check, and every pod is
locked down as the guide's cluster requires."""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.tools import (
    ALERTMANAGER_CONFIG,
    DASHBOARDS,
    MONITORING,
    PROMETHEUS_CONFIG,
    RULES,
    load_yaml,
    run,
)

KUBERNETES_VERSIONS = ["1.25.0", "1.31.0"]
# Untyped, and pyproject.toml's mypy overrides are shared: imported by name.
kubernetes_validate = importlib.import_module("kubernetes_validate")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(MONITORING)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _config_map(docs: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    (found,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].rsplit("-", 1)[0] == prefix
    ]
    return found


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for deployment in _by_kind(docs, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            yield deployment["metadata"]["name"], pod, container


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates(rendered: list[dict[str, Any]], version: str) -> None:
    errors = []
    for doc in rendered:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {doc['apiVersion']} in Kubernetes {version}")
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {list(exc.path)}: {exc.message}")
    assert errors == []


def test_the_guides_objects_exist(rendered: list[dict[str, Any]]) -> None:
    deployments = _by_kind(rendered, "Deployment")
    assert set(deployments) == {"prometheus", "alertmanager", "grafana"}
    services = _by_kind(rendered, "Service")
    assert {n: s["spec"]["ports"][0]["port"] for n, s in services.items()} == {
        "prometheus": 9090,
        "alertmanager": 9093,
        "grafana": 3000,
    }
    for doc in rendered:
        if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == "mlops-production", doc["metadata"]["name"]
    for name, deployment in deployments.items():
        # `kubectl get pods -n mlops-production -l tier=monitoring` (guide, step 7)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["tier"] == "monitoring" and labels["app"] == name
    assert set(_by_kind(rendered, "PersistentVolumeClaim")) == {
        "prometheus-data",
        "alertmanager-data",
        "grafana-data",
    }


def test_configmaps_hold_the_tested_files_byte_for_byte(rendered: list[dict[str, Any]]) -> None:
    rules = _config_map(rendered, "prometheus-rules")["data"]
    assert rules == {p.name: p.read_text() for p in RULES}
    config = _config_map(rendered, "prometheus-config")["data"]
    assert config == {"prometheus.yml": PROMETHEUS_CONFIG.read_text()}
    alertmanager = _config_map(rendered, "alertmanager-config")["data"]
    assert alertmanager == {"alertmanager.yml": ALERTMANAGER_CONFIG.read_text()}
    dashboards = _config_map(rendered, "grafana-dashboards")["data"]
    assert dashboards == {p.name: p.read_text() for p in DASHBOARDS}


def test_pods_run_restricted(rendered: list[dict[str, Any]]) -> None:
    for name, pod, container in _containers(rendered):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert ":" in container["image"] and not container["image"].endswith(":latest"), name
        assert container["resources"]["limits"] and container["resources"]["requests"], name
        assert container["readinessProbe"] and container["livenessProbe"], name
        # Platform pods are scraped on the port named `http`; these are not platform pods.
        assert all(port["name"] != "http" for port in container["ports"]), name
        # Only Prometheus talks to the Kubernetes API (discovery).
        automount = pod.get("automountServiceAccountToken")
        assert automount is (name == "prometheus"), name


def test_prometheus_discovers_and_reads_no_more_than_it_needs(
    rendered: list[dict[str, Any]],
) -> None:
    (role,) = _by_kind(rendered, "Role").values()
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    (cluster_role,) = _by_kind(rendered, "ClusterRole").values()
    granted = {
        (r, v) for rule in cluster_role["rules"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert granted == {
        ("nodes", "get"),
        ("nodes", "list"),
        ("nodes", "watch"),
        ("nodes/metrics", "get"),
    }
    (_, pod, container) = next(c for c in _containers(rendered) if c[0] == "prometheus")
    args = container["args"]
    assert "--web.route-prefix=/prometheus" in args
    assert any(a.startswith("--storage.tsdb.retention.time=") for a in args)
    assert not any("enable-lifecycle" in a or "enable-admin-api" in a for a in args)
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"mlops-metrics-token"}


def test_grafana_uses_the_admin_secret_and_no_anonymous_access(
    rendered: list[dict[str, Any]],
) -> None:
    (_, _, container) = next(c for c in _containers(rendered) if c[0] == "grafana")
    env = {e["name"]: e for e in container["env"]}
    ref = env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "grafana-admin-password"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"]["value"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"]["value"] == "false"
    assert env["GF_SERVER_ROOT_URL"]["value"] == "https://monitoring.mlops-platform.com/grafana/"
    assert env["GF_SERVER_SERVE_FROM_SUB_PATH"]["value"] == "true"


def test_alertmanager_reads_receiver_secrets_from_its_mount(rendered: list[dict[str, Any]]) -> None:
    (_, pod, container) = next(c for c in _containers(rendered) if c[0] == "alertmanager")
    assert "--web.route-prefix=/alertmanager" in container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (secret,) = [v for v in pod["volumes"] if "secret" in v]
    assert secret["secret"]["secretName"] == "alertmanager-receivers"
    config = load_yaml(ALERTMANAGER_CONFIG)
    files = [config["global"]["slack_api_url_file"], config["global"]["smtp_auth_password_file"]]
    files += [
        c["routing_key_file"] for r in config["receivers"] for c in r.get("pagerduty_configs", [])
    ]
    assert all(Path(f).parent == Path(mounts[secret["name"]]) for f in files), files


def test_the_deployed_prometheus_config_loads(tmp_path: Path) -> None:
    """promtool checks the deployed file with two changes: Debian's Prometheus is built
    without Kubernetes discovery (static targets stand in), and the mounted secret files
    are written here."""
    config = load_yaml(PROMETHEUS_CONFIG)
    token = tmp_path / "token"
    token.write_text("t" * 40)
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token)
        if "tls_config" in job:
            job["tls_config"]["ca_file"] = str(token)
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    config["rule_files"] = [str(p) for p in RULES]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run("promtool", "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
