"""Is a deployment healthy and complete? The guide's step:

    cd tests/deployment && python verify_deployment.py --environment production

Each component answers (/health, /ready, /v2/health/ready, /metrics), the schema is
current, the default model is ready, a login works; with kubectl and a context, every
Deployment is rolled out, the HPAs exist, the VirtualService routes to the api-server
and the certificates are valid for more than 14 days (an https target's own
certificate is checked either way). Exits 1 when any check fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

# Run as a script from anywhere in a checkout: the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from tests.deployment.deployment_checks import (  # noqa: E402
    CheckFailed,
    Target,
    client,
    credential,
    expect,
    parser,
    report,
    run_checks,
    target_of,
)
from tests.deployment.http_client import Client  # noqa: E402

MIN_CERT_DAYS = 14
Check = Callable[[], str]
EXPECTED_DEPLOYMENTS = ("api-server", "model-server", "web-ui", "workers")


def http_checks(http: Client, t: Target) -> list[tuple[str, Check]]:
    def health() -> str:
        expect(http.get(f"{t.base_url}/health"), 200, "/health")
        return "200"

    def ready() -> str:
        body = expect(http.get(f"{t.base_url}/ready"), 200, "/ready")
        failed = [n for n, c in body["checks"].items() if c["status"] == "error"]
        if failed:
            raise CheckFailed(f"not ok: {', '.join(failed)}")
        return ", ".join(sorted(body["checks"]))

    def schema() -> str:
        body = http.get(f"{t.base_url}/ready").json()
        check = body.get("checks", {}).get("schema", {})
        if check.get("status") != "ok":
            raise CheckFailed(f"schema {check.get('status', 'unknown')}: run `mlops db upgrade`")
        return "current"

    def web_ui() -> str:
        expect(http.get(f"{t.web_url}/health"), 200, "web UI /health")
        return "200"

    def model_server() -> str:
        expect(http.get(f"{t.model_url}/v2/health/ready"), 200, "/v2/health/ready")
        return "ready"

    def metrics() -> str:
        token = os.environ.get("MLOPS_METRICS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = http.get(f"{t.base_url}/metrics", headers=headers)
        if response.status_code != 200 or "mlops_http_requests_total" not in response.text:
            raise CheckFailed(f"/metrics: HTTP {response.status_code} (MLOPS_METRICS_TOKEN?)")
        return "scraped"

    state: dict[str, str] = {}

    def login() -> str:
        state["token"] = credential(http, t.base_url)
        me = expect(http.get(f"{t.base_url}/api/v1/users/me", headers=_bearer(state)), 200, "me")
        return f"{me['username']} ({me['authenticated_via']})"

    def default_model() -> str:
        if "token" not in state:
            raise CheckFailed("needs a login")
        body = expect(
            http.get(f"{t.base_url}/api/v1/settings/default-model", headers=_bearer(state)),
            200,
            "default model",
        )
        if not body.get("name"):
            raise CheckFailed("no default model is set")
        ready = http.get(f"{t.model_url}/v2/models/{body['name']}/ready", headers=_bearer(state))
        expect(ready, 200, f"model {body['name']}")
        return f"{body['name']} ready"

    return [
        ("api /health", health),
        ("api /ready", ready),
        ("schema", schema),
        ("model server /v2/health/ready", model_server),
        ("web UI /health", web_ui),
        ("metrics", metrics),
        ("login", login),
        ("default model", default_model),
    ]


def _bearer(state: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {state['token']}"}


def tls_check(url: str) -> tuple[str, Check] | None:
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None

    def certificate() -> str:
        context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
        try:
            with (
                socket.create_connection((parts.hostname, parts.port or 443), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
            ):
                cert = tls.getpeercert()
        except ssl.SSLError as exc:
            raise CheckFailed(f"TLS: {exc.reason or exc}") from None
        assert cert is not None
        expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
        days = (expires - time.time()) / 86400
        if days < MIN_CERT_DAYS:
            raise CheckFailed(f"expires in {days:.1f} days (< {MIN_CERT_DAYS})")
        return f"valid for {days:.0f} more days"

    return (f"certificate {parts.hostname}", certificate)


def kubectl_json(*args: str) -> dict[str, object]:
    done = subprocess.run(
        ["kubectl", *args, "-o", "json"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise CheckFailed(done.stderr.strip()[:200])
    result: dict[str, object] = json.loads(done.stdout)
    return result


def kubernetes_checks(namespace: str | None) -> list[tuple[str, Check]]:
    if not namespace or shutil.which("kubectl") is None:
        return []
    context = subprocess.run(
        ["kubectl", "config", "current-context"], capture_output=True, text=True, check=False
    )
    if context.returncode != 0:
        return []
    ns = ["-n", namespace]

    def rollouts() -> str:
        items = kubectl_json("get", "deployments", *ns)["items"]
        assert isinstance(items, list)
        seen = {d["metadata"]["name"]: d for d in items}
        missing = [n for n in EXPECTED_DEPLOYMENTS if n not in seen]
        if missing:
            raise CheckFailed(f"missing: {', '.join(missing)}")
        behind = [
            f"{n} {d['status'].get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}"
            for n, d in seen.items()
            if d["status"].get("readyReplicas", 0) < d["spec"].get("replicas", 1)
            or d["status"].get("updatedReplicas", 0) < d["spec"].get("replicas", 1)
        ]
        if behind:
            raise CheckFailed(f"not rolled out: {', '.join(behind)}")
        return f"{len(seen)} deployments ready"

    def hpas() -> str:
        items = kubectl_json("get", "hpa", *ns)["items"]
        assert isinstance(items, list)
        targets = {h["spec"]["scaleTargetRef"]["name"] for h in items}
        missing = [n for n in ("api-server", "model-server") if n not in targets]
        if missing:
            raise CheckFailed(f"no HPA for {', '.join(missing)}")
        return f"{len(items)} HPAs"

    def virtual_service() -> str:
        items = kubectl_json("get", "virtualservices.networking.istio.io", *ns)["items"]
        assert isinstance(items, list)
        hosts = {
            route["destination"]["host"].split(".")[0]
            for vs in items
            for http_route in vs["spec"].get("http", [])
            for route in http_route.get("route", [])
        }
        if "api-server" not in hosts:
            raise CheckFailed(f"no route to api-server (routes to {sorted(hosts)})")
        return f"routes to {', '.join(sorted(hosts))}"

    def certificates() -> str:
        items = kubectl_json("get", "certificates.cert-manager.io", *ns)["items"]
        assert isinstance(items, list)
        now = datetime.now(UTC)
        short = []
        for cert in items:
            not_after = cert.get("status", {}).get("notAfter")
            if not not_after:
                short.append(f"{cert['metadata']['name']} not issued")
                continue
            days = (datetime.fromisoformat(not_after.replace("Z", "+00:00")) - now).days
            if days < MIN_CERT_DAYS:
                short.append(f"{cert['metadata']['name']} {days} days")
        if short or not items:
            raise CheckFailed(", ".join(short) or "no certificates")
        return f"{len(items)} certificates valid > {MIN_CERT_DAYS} days"

    return [
        ("deployments rolled out", rollouts),
        ("HPAs", hpas),
        ("VirtualService", virtual_service),
        ("cert-manager certificates", certificates),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__ or "").parse_args(argv)
    target = target_of(args)
    with client(args.timeout) as http:
        checks = http_checks(http, target)
        checks += [c for c in (tls_check(target.base_url),) if c is not None]
        checks += kubernetes_checks(target.namespace)
        code: int = report(run_checks(checks), args.json)
        return code


if __name__ == "__main__":
    sys.exit(main())
