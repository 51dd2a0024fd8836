"""The production bundle as the tests see it: rendered with kustomize, file by file,
and the pieces (pods, services, routes) the cross-reference tests compare.

The bundle needs config/secrets.yaml, which an operator makes from the template and
never commits; the render copies the tree to a temporary folder and fills the
template's empty values there.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
PRODUCTION = INFRA / "production"
STAGING = INFRA / "overlays" / "staging"
NAMESPACE = "mlops-production"
GUIDE_FILES = [
    "config/kubernetes/namespace.yaml",
    "config/kubernetes/rbac.yaml",
    "config/kubernetes/secrets.yaml",
    "config/kubernetes/configmaps.yaml",
    "config/kubernetes/postgres.yaml",
    "config/kubernetes/redis.yaml",
    "config/kubernetes/api-server.yaml",
    "config/kubernetes/model-server.yaml",
    "config/kubernetes/web-ui.yaml",
    "config/kubernetes/workers.yaml",
    "gateway/istio-gateway.yaml",
    "gateway/virtual-services.yaml",
    "gateway/destination-rules.yaml",
    "security/network-policies.yaml",
    "security/pod-security-policies.yaml",
    "security/gatekeeper-policies.yaml",
    "security/falco-config.yaml",
    "security/certificates.yaml",
    "config/kubernetes/hpa.yaml",
    "config/kubernetes/vpa.yaml",
]
Doc = dict[str, Any]
POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"}


def crd_schema_dir() -> Path:
    """../shared/schemas/crds beside the repository (CI clones it with shared/ beside)."""
    path = Path(os.environ.get("CRD_SCHEMA_DIR", ROOT.parent / "shared" / "schemas" / "crds"))
    if not path.is_dir():
        raise RuntimeError(
            f"CRD schemas not found at {path}: the infrastructure tests need shared/schemas/crds "
            "beside the repository (or CRD_SCHEMA_DIR pointing at it)"
        )
    return path


def filled_secrets() -> str:
    """The secrets template with test values in place of its empty strings."""
    docs = list(yaml.safe_load_all((PRODUCTION / "config" / "secrets.yaml.template").read_text()))
    for doc in docs:
        for key, value in doc["stringData"].items():
            if value == "":
                doc["stringData"][key] = f"test-{doc['metadata']['name']}-{key}"
    return yaml.safe_dump_all(docs)


def kustomize(path: Path) -> list[Doc]:
    kubectl = system_tool("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@cache
def work_copy() -> Path:
    """infrastructure/ copied with config/secrets.yaml made from the template."""
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bundle-"))
    shutil.copytree(INFRA, tmp / "infrastructure", symlinks=True)
    (tmp / "infrastructure/production/config/secrets.yaml").write_text(filled_secrets())
    return tmp / "infrastructure"


@cache
def _rendered(overlay: str) -> list[Doc]:
    infra = work_copy()
    base = infra / "production"
    return kustomize(base if overlay == "production" else infra / "overlays" / overlay)


def rendered(overlay: str = "production") -> list[Doc]:
    """`kubectl kustomize` of the base (production) or of overlays/<name> (a fresh copy)."""
    return copy.deepcopy(_rendered(overlay))


def guide_file_docs(relative: str) -> list[Doc]:
    """The documents of one of the guide's files (what `kubectl apply -f` applies)."""
    path = work_copy() / "production" / relative
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def key(doc: Doc) -> tuple[str, str, str]:
    return (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} named {name} in the bundle")


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def pod_template(doc: Doc) -> Doc:
    """The pod template of a workload (its metadata and spec)."""
    if doc["kind"] == "CronJob":
        template: Doc = doc["spec"]["jobTemplate"]["spec"]["template"]
    else:
        template = doc["spec"]["template"]
    return template


@dataclass(frozen=True)
class Container:
    owner: Doc
    pod: Doc
    spec: Doc

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.pod["metadata"].get("labels", {})
        return labels


def containers(docs: list[Doc]) -> Iterator[Container]:
    for doc in docs:
        if doc["kind"] in POD_OWNERS:
            pod = pod_template(doc)
            for spec in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
                yield Container(doc, pod, spec)


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in POD_OWNERS]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions", []):
        op, k, values = expr["operator"], expr["key"], expr.get("values", [])
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and labels.get(k) in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True
