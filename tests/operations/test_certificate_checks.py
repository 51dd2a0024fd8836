"""verify_deployment.py's certificate checks: a real TLS server whose certificate
expires too soon, and cert-manager's view through kubectl (no cluster runs here, so
a kubectl on PATH answers with recorded objects)."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.operations.test_deployment_scripts import by_name, script


def _certificate(directory: Path, days: int) -> tuple[Path, Path]:
    cert, key = directory / f"cert-{days}.pem", directory / f"key-{days}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    cert, key = _certificate(tmp_path, request.param)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("tls_server", [5], indirect=True)
def test_a_certificate_expiring_within_14_days_fails(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    code, report = script("verify_deployment.py", "--base-url", url, SSL_CERT_FILE=str(cert))
    check = by_name(report)["certificate 127.0.0.1"]
    assert code == 1 and not check["ok"], check
    assert check["detail"].startswith("expires in ") and "days (< 14)" in check["detail"], check


@pytest.mark.parametrize("tls_server", [90], indirect=True)
def test_a_certificate_valid_for_90_days_passes(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    _, report = script("verify_deployment.py", "--base-url", url, SSL_CERT_FILE=str(cert))
    check = by_name(report)["certificate 127.0.0.1"]
    assert check["ok"] and "valid for" in check["detail"], check


def _fake_kubectl(directory: Path, objects: dict[str, object]) -> dict[str, str]:
    """A kubectl that has a context and prints recorded objects by resource name."""
    (directory / "objects.json").write_text(json.dumps(objects))
    tool = directory / "kubectl"
    tool.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "if args[:2] == ['config', 'current-context']:\n"
        "    print('recorded'); sys.exit(0)\n"
        f"objects = json.load(open({str(directory / 'objects.json')!r}))\n"
        "print(json.dumps({'items': objects[args[1]]}))\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}


def _deployment(name: str, ready: int, replicas: int = 2) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready, "updatedReplicas": ready},
    }


def test_kubernetes_checks_catch_a_stalled_rollout_and_a_short_certificate(
    tmp_path: Path,
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ")
    objects = {
        "deployments": [
            _deployment("api-server", 2), _deployment("model-server", 1),
            _deployment("web-ui", 2), _deployment("workers", 2),
        ],
        "hpa": [{"spec": {"scaleTargetRef": {"name": "api-server"}}}],
        "virtualservices.networking.istio.io": [
            {"spec": {"http": [{"route": [{"destination": {"host": "web-ui"}}]}]}}
        ],
        "certificates.cert-manager.io": [
            {"metadata": {"name": "mlops-platform-cert"}, "status": {"notAfter": soon}},
            {"metadata": {"name": "other"}, "status": {"notAfter": later}},
        ],
    }  # fmt: skip
    env = _fake_kubectl(tmp_path, objects)
    code, report = script(
        "verify_deployment.py", "--environment", "production",
        "--base-url", "http://127.0.0.1:9", **env,
    )  # fmt: skip
    checks = by_name(report)
    assert code == 1
    assert "model-server 1/2" in checks["deployments rolled out"]["detail"]
    assert "no HPA for model-server" in checks["HPAs"]["detail"]
    assert "no route to api-server" in checks["VirtualService"]["detail"]
    assert "mlops-platform-cert 2 days" in checks["cert-manager certificates"]["detail"]
    assert not any(checks[n]["ok"] for n in ("deployments rolled out", "HPAs", "VirtualService"))

    healthy = dict(objects)
    healthy["deployments"] = [
        _deployment(n, 2) for n in ("api-server", "model-server", "web-ui", "workers")
    ]
    healthy["hpa"] = [
        {"spec": {"scaleTargetRef": {"name": n}}} for n in ("api-server", "model-server")
    ]
    healthy["virtualservices.networking.istio.io"] = [
        {
            "spec": {
                "http": [
                    {
                        "route": [
                            {
                                "destination": {
                                    "host": "api-server.mlops-production.svc.cluster.local"
                                }
                            }
                        ]
                    }
                ]
            }
        }
    ]
    healthy["certificates.cert-manager.io"] = [
        {"metadata": {"name": "mlops-platform-cert"}, "status": {"notAfter": later}}
    ]
    env = _fake_kubectl(tmp_path, healthy)
    _, report = script(
        "verify_deployment.py", "--environment", "production",
        "--base-url", "http://127.0.0.1:9", **env,
    )  # fmt: skip
    checks = by_name(report)
    for name in ("deployments rolled out", "HPAs", "VirtualService", "cert-manager certificates"):
        assert checks[name]["ok"], checks[name]
