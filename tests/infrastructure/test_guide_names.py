"""Every path, object name, label, host and command of the deployment guide
(../shared/spec/deployment-guide.md) resolves in our files and built manifests."""

from __future__ import annotations

import pytest

from tests.infrastructure.bundle import (
    GUIDE_FILES,
    NAMESPACE,
    PRODUCTION,
    ROOT,
    find,
    guide_file_docs,
    of_kind,
    pod_template,
    rendered,
    selects,
    workloads,
)
from tests.infrastructure.istio import route, service_name

# Paths the guide applies or copies, relative to infrastructure/production (step 1 cds there).
GUIDE_PATHS = [
    "config/application.yml.template",
    "config/secrets.yaml.template",
    *GUIDE_FILES,
    "config/kubernetes/api-server-blue.yaml",
]
HOSTS = ["api.mlops-platform.com", "app.mlops-platform.com", "monitoring.mlops-platform.com"]


@pytest.mark.parametrize("relative", GUIDE_PATHS)
def test_every_file_the_guide_uses_exists(relative: str) -> None:
    assert (PRODUCTION / relative).exists() or relative == "config/kubernetes/secrets.yaml"
    assert guide_file_docs(relative) if relative.endswith(".yaml") else True


def test_the_workflow_file_the_guide_shows_exists() -> None:
    assert (ROOT / ".github/workflows/production-deploy.yml").is_file()


def test_namespace_and_labels() -> None:
    docs = rendered()
    namespace = find(docs, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["istio-injection"] == "enabled"
    namespaced = [d for d in docs if d["kind"] not in {"Namespace", "ClusterIssuer"}]
    others = {d["metadata"].get("namespace") for d in namespaced} - {NAMESPACE}
    assert others <= {None, "falco"}  # cluster-scoped Gatekeeper objects; Falco's rules
    tiers = {pod_template(w)["metadata"]["labels"].get("tier") for w in workloads(docs)}
    assert {"database", "application"} <= tiers
    # kubectl wait --for=condition=ready pod -l app=postgres; get pods -l tier=database
    postgres_pods = [
        w
        for w in workloads(docs)
        if selects({"matchLabels": {"app": "postgres"}}, pod_template(w)["metadata"]["labels"])
    ]
    assert [w["kind"] + "/" + w["metadata"]["name"] for w in postgres_pods] == [
        "StatefulSet/postgres"
    ]
    for name in ("postgres", "redis"):
        labels = pod_template(find(docs, "StatefulSet", name))["metadata"]["labels"]
        assert labels["tier"] == "database"
    for name in ("api-server", "model-server", "web-ui", "workers"):
        labels = pod_template(find(docs, "Deployment", name))["metadata"]["labels"]
        assert labels["tier"] == "application" and labels["app"] == name


def test_postgres_pod_database_and_user() -> None:
    docs = rendered()
    statefulset = find(docs, "StatefulSet", "postgres")
    assert statefulset["spec"]["replicas"] == 1  # its only pod is postgres-0
    assert statefulset["spec"]["serviceName"] == "postgres"
    # kubectl exec ... postgres-0 -- pg_dump -U mlops mlops_prod: the default container
    pod = pod_template(statefulset)
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "postgres"
    secret = find(docs, "Secret", "mlops-database-credentials")
    assert secret["stringData"]["username"] == "mlops"
    assert secret["stringData"]["database"] == "mlops_prod"
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in pod["spec"]["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert env["POSTGRES_USER"]["key"] == "username" and env["POSTGRES_DB"]["key"] == "database"
    # pg_isready -h postgres -p 5432 from an API pod
    service = find(docs, "Service", "postgres")
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]


def test_deployments_and_containers_the_guide_names() -> None:
    docs = rendered()
    for name in ("api-server", "model-server", "web-ui", "workers"):
        deployment = find(docs, "Deployment", name)
        pod = pod_template(deployment)
        # kubectl set image deployment/api-server api-server=...;
        # kubectl patch ... {"containers":[{"name":"api-server",...}]}
        assert pod["spec"]["containers"][0]["name"] == name
        assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == name
    blue = find(
        guide_file_docs("config/kubernetes/api-server-blue.yaml"), "Deployment", "api-server-blue"
    )
    assert pod_template(blue)["spec"]["containers"][0]["name"] == "api-server"


def test_secrets_and_certificate_the_guide_names() -> None:
    docs = rendered()
    find(docs, "Secret", "mlops-database-credentials")
    find(docs, "Secret", "grafana-admin-password")
    cert = find(docs, "Certificate", "mlops-platform-cert")
    assert cert["metadata"]["namespace"] == NAMESPACE
    assert set(HOSTS) <= set(cert["spec"]["dnsNames"])
    gateway = find(docs, "Gateway", "mlops-gateway")
    https = [s for s in gateway["spec"]["servers"] if s["port"]["protocol"] == "HTTPS"]
    assert https[0]["tls"]["credentialName"] == cert["spec"]["secretName"]
    assert set(cert["spec"]["dnsNames"]) == set(https[0]["hosts"])


def test_gateway_hosts_and_the_blue_green_switch() -> None:
    docs = rendered() + guide_file_docs("config/kubernetes/api-server-blue.yaml")
    gateway = find(docs, "Gateway", "mlops-gateway")
    served = {h for s in gateway["spec"]["servers"] for h in s["hosts"]}
    assert set(HOSTS) <= served
    vs = find(docs, "VirtualService", "mlops-api-vs")
    # The guide's patch: /spec/http/0/route/0/destination/subset, "blue" or "green"
    assert vs["spec"]["http"][0]["route"][0]["destination"]["subset"] == "green"
    rule = find(docs, "DestinationRule", "api-server")
    assert {s["name"] for s in rule["spec"]["subsets"]} == {"blue", "green"}
    # curl -H "Host: api-staging.mlops-platform.com" https://api.mlops-platform.com/health
    assert "api-staging.mlops-platform.com" in served
    (staging,) = [
        v
        for v in of_kind(docs, "VirtualService")
        if "api-staging.mlops-platform.com" in v["spec"]["hosts"]
    ]
    found = route(staging, "GET", "/health")
    assert found is not None
    assert service_name(found[1]["host"], NAMESPACE) == "api-server"
    assert found[1]["subset"] == "blue"
    # Istio's telemetry and the monitoring stack (its `slot` label) read the `version` label.
    for name, slot in (("api-server", "green"), ("api-server-blue", "blue")):
        assert pod_template(find(docs, "Deployment", name))["metadata"]["labels"]["version"] == slot
    blue_subset = next(s for s in rule["spec"]["subsets"] if s["name"] == "blue")
    blue = find(docs, "Deployment", "api-server-blue")
    assert selects({"matchLabels": blue_subset["labels"]}, pod_template(blue)["metadata"]["labels"])
    # curl https://api.mlops-platform.com/health, app.../health, and the guide's predict
    api_vs = find(docs, "VirtualService", "mlops-api-vs")
    found = route(api_vs, "POST", "/api/v1/models/predict")
    assert found is not None and service_name(found[1]["host"], NAMESPACE) == "model-server"
    found = route(api_vs, "POST", "/api/v1/auth/login")
    assert found is not None and service_name(found[1]["host"], NAMESPACE) == "api-server"


def test_scaling_commands_resolve() -> None:
    docs = rendered()
    # kubectl scale deployment api-server / model-server; kubectl get hpa
    for name in ("api-server", "model-server"):
        find(docs, "Deployment", name)
        hpa = find(docs, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["minReplicas"] >= 3
