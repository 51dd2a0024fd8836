"""The Gatekeeper ConstraintTemplates' Rego, run with regorus (no OPA binary here):
each Constraint rejects a bad object and admits every workload we ship."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import regorus

from tests.infrastructure.bundle import (
    ROOT,
    Doc,
    find,
    guide_file_docs,
    of_kind,
    pod_template,
    rendered,
    workloads,
)

CONSTRAINT_KINDS = [
    "K8sRequiredLabels",
    "K8sPinnedImages",
    "K8sNoPrivileged",
    "K8sRequiredResources",
    "K8sReadOnlyRootFilesystem",
]


def violations(constraint: Doc, obj: Doc) -> list[str]:
    template = find(rendered(), "ConstraintTemplate", constraint["kind"].lower())
    (target,) = template["spec"]["targets"]
    engine = regorus.Engine()
    engine.set_rego_v0(True)  # Gatekeeper's templates use pre-1.0 Rego
    engine.add_policy(f"{template['metadata']['name']}.rego", target["rego"])
    engine.set_input(
        {
            "review": {"object": obj, "kind": {"kind": obj["kind"]}},
            "parameters": constraint["spec"].get("parameters", {}),
        }
    )
    package = target["rego"].split("package ", 1)[1].split()[0]
    result = json.loads(engine.eval_rule_as_json(f"data.{package}.violation"))
    return sorted(v["msg"] for v in result)


def _matches(constraint: Doc, obj: Doc) -> bool:
    match = constraint["spec"]["match"]
    kinds = {k for group in match["kinds"] for k in group["kinds"]}
    namespace = obj["metadata"].get("namespace")
    return obj["kind"] in kinds and namespace in match.get("namespaces", [namespace])


def _shipped() -> list[Doc]:
    blue = guide_file_docs("config/kubernetes/api-server-blue.yaml")
    docs = workloads(rendered()) + workloads(blue)
    # Each pod as the API server admits it (Gatekeeper also reviews the pods).
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                **pod_template(w)["metadata"],
                "name": w["metadata"]["name"] + "-0",
                "namespace": w["metadata"]["namespace"],
            },
            "spec": pod_template(w)["spec"],
        }
        for w in docs
    ]
    return docs + pods


def test_every_constraint_has_its_template_and_enforces() -> None:
    docs = rendered()
    constraints = [d for d in docs if d["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    assert sorted(c["kind"] for c in constraints) == sorted(CONSTRAINT_KINDS)
    for constraint in constraints:
        assert constraint["spec"]["enforcementAction"] == "deny"
        assert constraint["spec"]["match"]["namespaces"] == ["mlops-production"]
    assert len(of_kind(docs, "ConstraintTemplate")) == len(CONSTRAINT_KINDS)


@pytest.mark.parametrize("kind", CONSTRAINT_KINDS)
def test_everything_we_ship_passes(kind: str) -> None:
    (constraint,) = of_kind(rendered(), kind)
    checked = 0
    for obj in _shipped():
        if _matches(constraint, obj):
            assert violations(constraint, obj) == [], obj["metadata"]["name"]
            checked += 1
    assert checked >= 16


def _container(obj: Doc) -> Doc:
    container: Doc = pod_template(obj)["spec"]["containers"][0]
    return container


Mutation = Callable[[Doc], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: Doc) -> None:
        target = _container(obj)
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value

    return mutate


def _drop_label(obj: Doc) -> None:
    del obj["metadata"]["labels"]["app.kubernetes.io/part-of"]


def _host_network(obj: Doc) -> None:
    pod_template(obj)["spec"]["hostNetwork"] = True


def _init_latest(obj: Doc) -> None:
    pod_template(obj)["spec"]["initContainers"] = [
        {**copy.deepcopy(_container(obj)), "name": "init", "image": "busybox:latest"}
    ]


def _no_memory_limit(obj: Doc) -> None:
    del _container(obj)["resources"]["limits"]["memory"]


BAD: dict[str, list[tuple[str, Mutation]]] = {
    "K8sRequiredLabels": [("no part-of label", _drop_label)],
    "K8sPinnedImages": [
        ("latest", _set("image", "ghcr.io/company/mlops-platform:latest")),
        ("no tag", _set("image", "ghcr.io/company/mlops-platform")),
        ("registry port, no tag", _set("image", "registry.local:5000/mlops")),
        ("init container on latest", _init_latest),
    ],
    "K8sNoPrivileged": [
        ("privileged", _set("securityContext.privileged", True)),
        ("escalation allowed", _set("securityContext.allowPrivilegeEscalation", True)),
        ("host network", _host_network),
    ],
    "K8sRequiredResources": [
        ("no memory limit", _no_memory_limit),
        ("no resources", _set("resources", {})),
    ],
    "K8sReadOnlyRootFilesystem": [
        ("writable root", _set("securityContext.readOnlyRootFilesystem", False)),
        ("unset", _set("securityContext", {"allowPrivilegeEscalation": False})),
    ],
}


@pytest.mark.parametrize(
    ("kind", "case"), [(k, i) for k, cases in BAD.items() for i in range(len(cases))]
)
def test_each_constraint_rejects_a_bad_object(kind: str, case: int) -> None:
    (constraint,) = of_kind(rendered(), kind)
    name, mutate = BAD[kind][case]
    for source in ("Deployment", "CronJob"):
        obj = copy.deepcopy(
            find(rendered(), source, "api-server" if source == "Deployment" else "mlops-backup")
        )
        assert violations(constraint, obj) == []
        mutate(obj)
        assert violations(constraint, obj) != [], (kind, name, source)


def test_the_two_pass_commands_name_every_template_and_its_crd() -> None:
    """docs/kubernetes.md waits for exactly the CRDs the bundle's templates make."""
    text = (ROOT / "docs" / "kubernetes.md").read_text()
    section = text.split("### Gatekeeper on a fresh cluster", 1)[1].split("\n## ", 1)[0]
    shipped = of_kind(rendered(), "ConstraintTemplate")
    templates = {t["metadata"]["name"] for t in shipped}
    kinds = {t["spec"]["crd"]["spec"]["names"]["kind"] for t in shipped}
    assert kinds == set(CONSTRAINT_KINDS)
    assert set(re.findall(r"constrainttemplate/([a-z0-9]+)", section)) == templates
    # Gatekeeper names each CRD <template>.constraints.gatekeeper.sh (the kind, lower-case).
    crds = set(re.findall(r"crd/([a-z0-9]+)\.constraints\.gatekeeper\.sh", section))
    assert crds == templates == {kind.lower() for kind in kinds}
    applies = re.findall(r"kubectl apply -f security/gatekeeper-policies\.yaml", section)
    assert len(applies) == 2
