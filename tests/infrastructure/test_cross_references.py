"""Cross-references inside the bundle, computed from the rendered manifests and from
the platform's own code: selectors, Secret and ConfigMap keys, Istio routes and
subsets, autoscaler and budget targets, probes, commands and images."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import typer

from tests.infrastructure.bundle import (
    NAMESPACE,
    Container,
    Doc,
    containers,
    find,
    guide_file_docs,
    of_kind,
    pod_template,
    rendered,
    selects,
    workloads,
)
from tests.infrastructure.istio import route, service_name

OVERLAYS = ["production", "staging"]
# The app each server command runs (src/mlops/cli/serve.py, worker.py, web.py).
COMPONENTS = {
    "api": {"api"},
    "model-server": {"serving"},
    "worker": {"workers"},
    "web": {"web"},
}
SAMPLE_PARAMS = {"name": "churn", "version": "1", "alias": "production", "username": "ana"}


def _pod_labels(docs: list[Doc]) -> list[dict[str, str]]:
    return [pod_template(w)["metadata"]["labels"] for w in workloads(docs)]


def _pods_of(docs: list[Doc], selector: dict[str, str]) -> list[Doc]:
    return [
        pod_template(w)
        for w in workloads(docs)
        if selects({"matchLabels": selector}, pod_template(w)["metadata"]["labels"])
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_and_name_their_ports(overlay: str) -> None:
    docs = rendered(overlay)
    for service in of_kind(docs, "Service"):
        pods = _pods_of(docs, service["spec"]["selector"])
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            for pod in pods:
                names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
                assert port["targetPort"] in names, (service["metadata"]["name"], port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_and_configmap_reference_exists(overlay: str) -> None:
    docs = rendered(overlay)
    secrets = {
        s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
        for s in of_kind(docs, "Secret")
    }
    configmaps = {c["metadata"]["name"]: set(c["data"]) for c in of_kind(docs, "ConfigMap")}
    claims = {c["metadata"]["name"] for c in of_kind(docs, "PersistentVolumeClaim")}
    accounts = {a["metadata"]["name"] for a in of_kind(docs, "ServiceAccount")}
    refs = 0
    for c in containers(docs):
        for env in c.spec.get("env", []):
            source = env.get("valueFrom", {})
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                assert ref["key"] in secrets.get(ref["name"], set()), ref
                refs += 1
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                assert ref["key"] in configmaps.get(ref["name"], set()), ref
            assert "value" in env or "valueFrom" in env
            assert not ("value" in env and re.search("PASSWORD|SECRET|TOKEN", env["name"])), (
                f"{env['name']} must come from a Secret (secretKeyRef)"
            )
        assert "envFrom" not in c.spec, "secrets and settings come one by one"
    for workload in workloads(docs):
        spec = pod_template(workload)["spec"]
        # The namespace's default account exists without a manifest.
        assert spec.get("serviceAccountName", "default") in accounts | {"default"}
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
            assert "secret" not in volume or volume["secret"]["secretName"] in secrets
    assert refs > 20


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_virtual_services_reach_existing_gateways_services_ports_and_subsets(
    overlay: str,
) -> None:
    # The blue slot is applied by hand during a release, not by the kustomization.
    docs = rendered(overlay) + guide_file_docs("config/kubernetes/api-server-blue.yaml")
    gateways = {g["metadata"]["name"]: g for g in of_kind(docs, "Gateway")}
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    rules = {
        service_name(d["spec"]["host"], NAMESPACE): d for d in of_kind(docs, "DestinationRule")
    }
    services_named = {d["metadata"]["name"] for d in of_kind(docs, "Service")}
    monitoring_present = "prometheus" in services_named
    for vs in of_kind(docs, "VirtualService"):
        for gateway in vs["spec"]["gateways"]:
            served = [h for s in gateways[gateway]["spec"]["servers"] for h in s["hosts"]]
            assert set(vs["spec"]["hosts"]) <= set(served), vs["metadata"]["name"]
        for entry in vs["spec"]["http"]:
            for target in entry["route"]:
                dest = target["destination"]
                name = service_name(dest["host"], NAMESPACE)
                if name in {"grafana", "prometheus", "alertmanager"} and not monitoring_present:
                    continue  # monitoring/ is added to the bundle by its own issue
                service = services.get(name)
                assert service is not None, f"{vs['metadata']['name']} routes to no Service {name}"
                ports = {p["port"] for p in service["spec"]["ports"]}
                assert dest["port"]["number"] in ports
                if "subset" in dest:
                    subsets = {s["name"]: s for s in rules[name]["spec"]["subsets"]}
                    subset = subsets[dest["subset"]]
                    assert _pods_of(docs, {**service["spec"]["selector"], **subset["labels"]})
    for rule in rules.values():
        for subset in rule["spec"].get("subsets", []):
            assert _pods_of(docs, subset["labels"]), subset


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_and_budgets_target_existing_workloads(overlay: str) -> None:
    docs = rendered(overlay)
    names = {(w["kind"], w["metadata"]["name"]) for w in workloads(docs)}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) in names
    for vpa in of_kind(docs, "VerticalPodAutoscaler"):
        ref = vpa["spec"]["targetRef"]
        assert (ref["kind"], ref["name"]) in names
        assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert any(selects(pdb["spec"]["selector"], labels) for labels in _pod_labels(docs))
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert {"api-server", "model-server", "workers"} <= scaled
    for deployment in of_kind(docs, "Deployment"):
        if pod_template(deployment)["metadata"]["labels"].get("tier") != "application":
            continue  # the monitoring stack runs single replicas
        selector = deployment["spec"]["selector"]
        assert selects(selector, pod_template(deployment)["metadata"]["labels"])
        assert any(
            selects(p["spec"]["selector"], pod_template(deployment)["metadata"]["labels"])
            for p in of_kind(docs, "PodDisruptionBudget")
        ), f"no PodDisruptionBudget for {deployment['metadata']['name']}"


def _mlops_commands(c: Container) -> Iterator[list[str]]:
    """The mlops invocations a container runs (its command, or lines of an sh -c)."""
    command = c.spec.get("command", [])
    if command[:1] == ["mlops"]:
        yield command
    elif command[:2] in (["sh", "-c"], ["bash", "-c"]):
        for line in command[2].splitlines():
            if line.strip().startswith("mlops "):
                yield shlex.split(line)


def _resolve(args: list[str]) -> tuple[list[str], Any]:
    """Parse args with the real CLI: (the command's path, its parsed click context).
    Typer vendors click, so the groups are recognised by their commands table."""
    from mlops.cli.main import app

    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = args[1:]
    while hasattr(command, "commands"):
        name, rest = rest[0], rest[1:]
        assert name in command.commands, f"mlops has no command {' '.join([*path, name])}"
        command, path = command.commands[name], [*path, name]
    return path, command.make_context(" ".join(["mlops", *path]), list(rest))


def _our_containers(docs: list[Doc]) -> list[Container]:
    return [c for c in containers(docs) if "mlops-platform" in c.spec["image"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_command_is_a_real_mlops_command(overlay: str) -> None:
    seen = set()
    for c in _our_containers(rendered(overlay)):
        invocations = list(_mlops_commands(c))
        assert invocations, f"container {c.spec['name']} runs no mlops command"
        for args in invocations:
            path, ctx = _resolve(args)
            seen.add(" ".join(path))
            if "port" in ctx.params:
                (http,) = [p for p in c.spec["ports"] if p["name"] == "http"]
                assert ctx.params["port"] == http["containerPort"]
                assert ctx.params["host"] == "0.0.0.0"
            assert str(ctx.params["config"]) == "/etc/mlops/application.yml"
    assert seen == {"api", "model-server", "web", "worker", "db upgrade", "backup create"}


@cache
def _get_routes(components: frozenset[str]) -> dict[str, set[str]]:
    from mlops.api.app import create_app
    from mlops.config import Settings

    app = create_app(Settings(), components=components)
    return {path: {m.upper() for m in ops} for path, ops in app.openapi()["paths"].items()}


def test_probes_hit_routes_the_container_serves() -> None:
    for c in _our_containers(rendered("production")):
        command = c.spec["command"]
        if command[:1] != ["mlops"]:
            continue
        routes = _get_routes(frozenset(COMPONENTS[command[1]]))
        ports = {p["name"] for p in c.spec["ports"]}
        probes = [c.spec[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")]
        for probe in probes:
            assert probe["httpGet"]["port"] in ports
            assert "GET" in routes[probe["httpGet"]["path"]], (command, probe)
        assert probes[1]["httpGet"]["path"] == "/health"
        assert probes[2]["httpGet"]["path"] == "/ready"


def test_images_are_pinned_and_ours_is_one_version() -> None:
    docs = rendered("production")
    images = {c.spec["image"] for c in containers(docs)}
    for image in images:
        name, _, tag = image.rpartition("/")[2].partition(":")
        assert tag and tag != "latest", image
    ours = {c.spec["image"] for c in _our_containers(docs)}
    assert len(ours) == 1


def _sample(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS.get(m.group(1), "7"), path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_routes_send_each_path_to_the_process_that_serves_it(overlay: str) -> None:
    docs = rendered(overlay)
    api_routes = _get_routes(frozenset({"api"}))
    serving_routes = _get_routes(frozenset({"serving"}))
    only_serving = {p: m for p, m in serving_routes.items() if p not in api_routes}
    hosts = {
        "mlops-api-vs": ("api-server", "green", "model-server"),
        "mlops-api-staging-vs": ("api-server", "blue", "model-server"),
        "mlops-app-vs": ("api-server", "green", "model-server"),
    }
    for vs_name, (api, subset, serving) in hosts.items():
        vs = find(docs, "VirtualService", vs_name)
        for path, methods in api_routes.items():
            if vs_name == "mlops-app-vs" and not path.startswith("/api/"):
                continue  # /health and /ready on the app host are the web UI's
            for method in methods:
                found = route(vs, method, _sample(path))
                assert found is not None, (vs_name, method, path)
                index, dest = found
                assert service_name(dest["host"], NAMESPACE) == api, (vs_name, method, path)
                assert (index, dest.get("subset")) == (0, subset), (vs_name, method, path)
        for path, methods in only_serving.items():
            for method in methods:
                found = route(vs, method, _sample(path))
                assert found is not None, (vs_name, method, path)
                assert service_name(found[1]["host"], NAMESPACE) == serving, (method, path)
        # A model named "predict" is still the API's to read.
        found = route(vs, "GET", "/api/v1/models/predict")
        assert found is not None and found[0] == 0
    app_vs = find(docs, "VirtualService", "mlops-app-vs")
    for path in ("/", "/models/churn", "/health", "/static/app.js"):
        found = route(app_vs, "GET", path)
        assert found is not None and service_name(found[1]["host"], NAMESPACE) == "web-ui", path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_migration_job_holds_the_admin_password(overlay: str) -> None:
    """`mlops db upgrade` makes the first admin; no server pod needs its password."""
    blue = guide_file_docs("config/kubernetes/api-server-blue.yaml")
    holders: set[tuple[str, str, str]] = set()
    for c in containers(rendered(overlay) + blue):
        for env in c.spec.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef", {})
            if env["name"] == "MLOPS_ADMIN_PASSWORD" or ref.get("key") == "admin-password":
                holders.add((c.owner["kind"], c.owner["metadata"]["name"], env["name"]))
    # Grafana's own admin (a different Secret) is not the platform's.
    assert holders == {
        ("Job", "db-migrate", "MLOPS_ADMIN_PASSWORD"),
        ("Deployment", "grafana", "GF_SECURITY_ADMIN_PASSWORD"),
    }
    job = find(rendered(overlay), "Job", "db-migrate")
    command = " ".join(pod_template(job)["spec"]["containers"][0]["command"])
    assert "mlops db upgrade" in command
