"""Every manifest validates (Kubernetes 1.25 and 1.31, CRD schemas for Istio,
cert-manager, Gatekeeper and VPA, Gatekeeper Constraints against their templates),
kustomize builds the base and the staging overlay, and `kubectl apply -k` applies
what the guide's per-file applies do."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from tests.infrastructure.bundle import (
    GUIDE_FILES,
    PRODUCTION,
    Doc,
    crd_schema_dir,
    find,
    guide_file_docs,
    key,
    kustomize,
    of_kind,
    rendered,
    work_copy,
)

K8S_VERSIONS = ["1.25.0", "1.31.0"]
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"


@cache
def _crd_validator(group: str, kind: str, version: str) -> jsonschema.Draft7Validator | None:
    path = crd_schema_dir() / group / f"{kind.lower()}_{version}.json"
    if not path.exists():
        return None
    return jsonschema.Draft7Validator(json.loads(path.read_text()))


def _constraint_validator(doc: Doc, docs: list[Doc]) -> jsonschema.Draft7Validator:
    """A Constraint's kind comes from its template: its parameters follow the template's
    schema; the rest is Gatekeeper's fixed shape."""
    template = find(docs, "ConstraintTemplate", doc["kind"].lower())
    params = template["spec"]["crd"]["spec"].get("validation", {}).get("openAPIV3Schema", {})
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enforcementAction": {"enum": ["deny", "dryrun", "warn"]},
                    "match": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "kinds": {"type": "array"},
                            "namespaces": {"type": "array", "items": {"type": "string"}},
                            "excludedNamespaces": {"type": "array"},
                            "labelSelector": {"type": "object"},
                            "namespaceSelector": {"type": "object"},
                            "scope": {"type": "string"},
                            "name": {"type": "string"},
                        },
                    },
                    "parameters": {**params, "additionalProperties": False}
                    if params
                    else {"type": "object", "maxProperties": 0},
                },
            }
        },
    }
    return jsonschema.Draft7Validator(schema)


def validation_errors(doc: Doc, docs: list[Doc], k8s: str) -> list[str]:
    """Errors of one document; an unknown kind is an error, never a warning."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    group, _, version = api_version.rpartition("/")
    if group == CONSTRAINT_GROUP:
        validator = _constraint_validator(doc, docs)
    else:
        crd = _crd_validator(group, kind, version) if group else None
        if crd is None:
            try:
                kubernetes_validate.validate(doc, k8s, strict=True)
            except SchemaNotFoundError:
                return [f"no schema for {api_version} {kind} in Kubernetes {k8s}"]
            except kubernetes_validate.ValidationError as exc:
                return [f"{list(exc.path)}: {exc.message}"]
            return []
        validator = crd
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("overlay", ["production", "staging"])
@pytest.mark.parametrize("k8s", K8S_VERSIONS)
def test_every_manifest_validates(overlay: str, k8s: str) -> None:
    docs = rendered(overlay)
    errors = [
        f"{'/'.join(key(doc))}: {error}"
        for doc in docs
        for error in validation_errors(doc, docs, k8s)
    ]
    assert errors == []
    assert len(docs) > 50


@pytest.mark.parametrize("relative", GUIDE_FILES + ["config/kubernetes/api-server-blue.yaml"])
def test_every_guide_file_validates_on_its_own(relative: str) -> None:
    docs = rendered("production")
    errors = [
        f"{'/'.join(key(doc))}: {error}"
        for doc in guide_file_docs(relative)
        for k8s in K8S_VERSIONS
        for error in validation_errors(doc, docs, k8s)
    ]
    assert errors == []


def test_validation_catches_an_unknown_kind_and_a_bad_field() -> None:
    docs = rendered("production")
    unknown = {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {}}
    assert validation_errors(unknown, docs, "1.25.0") != []
    deployment = json.loads(json.dumps(find(docs, "Deployment", "api-server")))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert validation_errors(deployment, docs, "1.31.0") != []
    vs = json.loads(json.dumps(find(docs, "VirtualService", "mlops-api-vs")))
    vs["spec"]["htp"] = []
    assert validation_errors(vs, docs, "1.31.0") != []
    constraint = json.loads(json.dumps(find(docs, "K8sRequiredLabels", "mlops-required-labels")))
    constraint["spec"]["parameters"]["labels"] = "app"
    assert validation_errors(constraint, docs, "1.31.0") != []


def test_apply_k_applies_what_the_guide_applies_file_by_file() -> None:
    by_file = {key(doc) for relative in GUIDE_FILES for doc in guide_file_docs(relative)}
    # Step 7's files come through monitoring/'s kustomization, with its ConfigMaps.
    monitoring = {key(doc) for doc in kustomize(work_copy() / "production" / "monitoring")}
    by_kustomize = {key(doc) for doc in rendered("production")}
    assert by_kustomize == by_file | monitoring
    assert by_file & monitoring == set()


def test_the_staging_overlay_changes_environment_and_hosts_only_where_meant() -> None:
    production, staging = rendered("production"), rendered("staging")
    assert {key(d) for d in production} == {key(d) for d in staging}
    apps = [
        d
        for d in of_kind(staging, "Deployment")
        if d["metadata"]["labels"]["tier"] == "application"
    ]
    assert len(apps) == 4
    for deployment in apps:
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "MLOPS_ENVIRONMENT", "value": "staging"} in env
    hosts = [h for vs in of_kind(staging, "VirtualService") for h in vs["spec"]["hosts"]]
    assert hosts and all(h.endswith(".staging.mlops-platform.com") for h in hosts)
    cert = find(staging, "Certificate", "mlops-platform-cert")
    gateway = find(staging, "Gateway", "mlops-gateway")
    assert sorted(cert["spec"]["dnsNames"]) == sorted(gateway["spec"]["servers"][0]["hosts"])


def test_configmap_holds_the_shipped_application_template() -> None:
    config = find(rendered("production"), "ConfigMap", "mlops-config")
    template = (PRODUCTION / "config" / "application.yml.template").read_text()
    assert yaml.safe_load(config["data"]["application.yml"]) == yaml.safe_load(template)


def test_pod_security_file_repeats_the_namespace_exactly() -> None:
    (psa,) = guide_file_docs("security/pod-security-policies.yaml")
    (namespace,) = guide_file_docs("config/kubernetes/namespace.yaml")
    assert psa == namespace
    assert psa["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_secrets_template_has_no_values_to_leak() -> None:
    template = (PRODUCTION / "config" / "secrets.yaml.template").read_text()
    for doc in yaml.safe_load_all(template):
        for name, value in doc["stringData"].items():
            assert value == "" or name in {"username", "database", "admin-user"}, name
    link = PRODUCTION / "config" / "kubernetes" / "secrets.yaml"
    assert link.is_symlink() and str(link.readlink()) == "../secrets.yaml"
