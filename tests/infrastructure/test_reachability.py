"""Who may reach whom, computed from the NetworkPolicies and the Istio
AuthorizationPolicies of the bundle, against the intended table: the gateway reaches
the web-facing services, those reach PostgreSQL, Redis and S3, the backup CronJob
reaches PostgreSQL and S3, Prometheus reaches every platform pod's metrics port, and
nothing else."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from tests.infrastructure.bundle import (
    NAMESPACE,
    Doc,
    of_kind,
    pod_template,
    rendered,
    selects,
    workloads,
)


@dataclass(frozen=True)
class Workload:
    name: str
    labels: dict[str, str] = field(hash=False)
    account: str
    ports: tuple[int, ...]


@dataclass(frozen=True)
class External:
    name: str
    ip: str
    port: int


# Installed next to the bundle: the Istio ingress gateway (docs/kubernetes.md) and the
# monitoring stack (its own issue; labels and accounts from the shared contracts).
GATEWAY = Workload(
    "gateway",
    {"istio": "ingressgateway", "app": "istio-ingressgateway"},
    "istio-ingressgateway",
    (8080, 8443),
)
MONITORING = [
    Workload("prometheus", {"app": "prometheus", "tier": "monitoring"}, "prometheus", (9090,)),
    Workload("grafana", {"app": "grafana", "tier": "monitoring"}, "grafana", (3000,)),
    Workload(
        "alertmanager", {"app": "alertmanager", "tier": "monitoring"}, "alertmanager", (9093,)
    ),
]
INTERNET_CLIENT = "203.0.113.7"
EXTERNALS = [
    External("s3", "52.216.8.5", 443),  # S3, and any public HTTPS service
    External("smtp", "52.1.2.3", 587),
    External("public-ssh", "52.216.8.5", 22),
    External("kube-api", "10.96.0.1", 443),
    External("kubelet", "10.0.5.5", 10250),
    External("private-db", "10.20.0.5", 5432),
]
APPS = {"api-server", "model-server", "web-ui", "workers"}
INTENDED = (
    {("internet", "gateway")}
    | {("gateway", d) for d in ("api-server", "model-server", "web-ui")}
    | {("gateway", d) for d in ("grafana", "prometheus", "alertmanager")}  # monitoring UIs
    | {(a, d) for a in APPS for d in ("postgres", "redis", "s3")}
    | {("db-migrate", "postgres")}
    | {("mlops-backup", "postgres"), ("mlops-backup", "s3")}  # mlops backup create, daily
    | {("prometheus", d) for d in APPS | {"alertmanager", "kube-api", "kubelet"}}
    | {("grafana", "prometheus"), ("api-server", "prometheus")}  # dashboards, UI charts
    | {("alertmanager", "s3"), ("alertmanager", "smtp")}  # PagerDuty, Slack, email
)


def platform_workloads(docs: list[Doc]) -> list[Workload]:
    found: dict[str, Workload] = {}
    for w in workloads(docs):
        pod = pod_template(w)
        labels = pod["metadata"]["labels"]
        ports = tuple(
            p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])
        )
        found[labels["app"]] = Workload(
            labels["app"], labels, pod["spec"].get("serviceAccountName", "default"), ports
        )
    for extra in [GATEWAY, *MONITORING]:
        found.setdefault(extra.name, extra)
    return list(found.values())


def _ip_in(block: Doc, ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _peer_matches(peer: Doc, target: Workload | str) -> bool:
    """A NetworkPolicy peer against a pod of our namespace or an IP address."""
    if isinstance(target, str):
        return "ipBlock" in peer and _ip_in(peer["ipBlock"], target)
    if "ipBlock" in peer:
        return False  # pod addresses are not pinned: ipBlocks are for outside the cluster
    if "namespaceSelector" in peer and not selects(
        peer["namespaceSelector"], {"kubernetes.io/metadata.name": NAMESPACE}
    ):
        return False
    return selects(peer.get("podSelector", {}), target.labels)


def _port_matches(ports: list[Doc] | None, port: int) -> bool:
    return ports is None or any(p.get("port") in (None, port) for p in ports)


def _np_allows(
    policies: list[Doc], direction: str, subject: Workload, peer: Workload | str, port: int
) -> bool:
    kind = "Ingress" if direction == "ingress" else "Egress"
    peers_key = "from" if direction == "ingress" else "to"
    applying = [
        p
        for p in policies
        if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not applying:
        return True
    for policy in applying:
        for rule in policy["spec"].get(direction, []):
            peers = rule.get(peers_key)
            if (peers is None or any(_peer_matches(x, peer) for x in peers)) and _port_matches(
                rule.get("ports"), port
            ):
                return True
    return False


def _principal(w: Workload) -> str:
    return f"cluster.local/ns/{NAMESPACE}/sa/{w.account}"


def _authz_rule_matches(rule: Doc, source: Workload | str, port: int) -> bool:
    for frm in rule.get("from", []):
        src = frm["source"]
        if "principals" in src and (
            isinstance(source, str) or _principal(source) not in src["principals"]
        ):
            return False
        if "notRemoteIpBlocks" in src:
            ip = source if isinstance(source, str) else "10.1.1.1"
            if any(_ip_in({"cidr": b}, ip) for b in src["notRemoteIpBlocks"]):
                return False
    for to in rule.get("to", []):
        ports = to["operation"].get("ports")
        if ports is not None and str(port) not in ports:
            return False
    return True


def _authz_allows(
    policies: list[Doc],
    source: Workload | str,
    dest: Workload,
    port: int,
    *,
    deny_paths_too: bool = False,
) -> bool:
    """Istio's order: a matching DENY rule refuses; else, if ALLOW policies apply to the
    workload, one of their rules must match. DENY rules limited to some paths leave
    the other paths reachable, so they refuse only when deny_paths_too."""
    applying = [
        p
        for p in policies
        if "selector" not in p["spec"] or selects(p["spec"]["selector"], dest.labels)
    ]
    for policy in applying:
        if policy["spec"].get("action") == "DENY":
            for rule in policy["spec"].get("rules", []):
                path_limited = any("paths" in t["operation"] for t in rule.get("to", []))
                if _authz_rule_matches(rule, source, port) and (deny_paths_too or not path_limited):
                    return False
    allows = [p for p in applying if p["spec"].get("action", "ALLOW") == "ALLOW"]
    return not allows or any(
        _authz_rule_matches(rule, source, port)
        for policy in allows
        for rule in policy["spec"].get("rules", [])
    )


def reachability(docs: list[Doc]) -> set[tuple[str, str]]:
    network = of_kind(docs, "NetworkPolicy")
    authz = of_kind(docs, "AuthorizationPolicy")
    pods = platform_workloads(docs)
    reach: set[tuple[str, str]] = set()
    for dest in pods:
        for port in dest.ports:
            if _np_allows(network, "ingress", dest, INTERNET_CLIENT, port) and _authz_allows(
                authz, INTERNET_CLIENT, dest, port
            ):
                reach.add(("internet", dest.name))
    for src in pods:
        for dest in pods:
            if src is dest:
                continue
            for port in dest.ports:
                if (
                    _np_allows(network, "egress", src, dest, port)
                    and _np_allows(network, "ingress", dest, src, port)
                    and _authz_allows(authz, src, dest, port)
                ):
                    reach.add((src.name, dest.name))
        for ext in EXTERNALS:
            if _np_allows(network, "egress", src, ext.ip, ext.port):
                reach.add((src.name, ext.name))
    return reach


def test_reachability_is_exactly_the_intended_table() -> None:
    docs = rendered()
    assert {w.name for w in platform_workloads(docs)} >= APPS | {"postgres", "redis"}
    assert reachability(docs) == INTENDED


def test_prometheus_reaches_only_metrics_on_the_apps() -> None:
    authz = of_kind(rendered(), "AuthorizationPolicy")
    for policy in authz:
        app = policy["spec"].get("selector", {}).get("matchLabels", {}).get("app")
        for rule in policy["spec"].get("rules", []):
            sources = [f["source"] for f in rule.get("from", [])]
            principals = [p for s in sources for p in s.get("principals", [])]
            if app in APPS and any(p.endswith("/sa/prometheus") for p in principals):
                assert [t["operation"]["paths"] for t in rule["to"]] == [["/metrics"]]


def test_monitoring_uis_refuse_public_addresses_at_the_gateway() -> None:
    authz = of_kind(rendered(), "AuthorizationPolicy")
    public, private = INTERNET_CLIENT, "10.8.0.9"
    assert not _authz_allows(authz, public, GATEWAY, 8443, deny_paths_too=True)
    assert _authz_allows(authz, private, GATEWAY, 8443, deny_paths_too=True)


def test_a_policy_hole_shows_in_the_table() -> None:
    """The computation notices a wider policy: Redis open to every address and every
    identity is reachable from the internet, so the equality above would fail."""
    docs: list[Any] = []
    for d in rendered():
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "redis-ingress":
            d = {**d, "spec": {**d["spec"], "ingress": [{"ports": [{"port": 6379}]}]}}
        if d["kind"] == "AuthorizationPolicy" and d["metadata"]["name"] == "redis-allow":
            d = {**d, "spec": {**d["spec"], "rules": [{}]}}
        docs.append(d)
    assert reachability(docs) - INTENDED == {("internet", "redis")}
