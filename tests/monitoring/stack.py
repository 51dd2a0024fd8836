"""A real Prometheus and Alertmanager on free 127.0.0.1 ports, with the repository's
rules and routes, for the end-to-end test.

Prometheus scrapes a live platform through a static target (Debian's build has no
Kubernetes discovery, and there is no cluster here); Alertmanager routes with the
repository's tree, each receiver replaced by a webhook to a local receiver whose path
is the receiver's name. The rules are the repository's files with time shortened: each
`for:` becomes 1s and each `[5m]` window 10s, so an alert fires and resolves within
seconds instead of minutes (the promtool tests check the real durations).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.cli.live_server import free_port
from tests.monitoring.tools import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    RULES,
    binary,
    load_yaml,
)

START_TIMEOUT_S = 60.0
TEST_WINDOW = "10s"


@dataclass
class Notification:
    receiver: str
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    """Collects Alertmanager's webhook posts; ``wait_for`` polls them with a deadline."""

    port: int = field(default_factory=free_port)
    received: list[Notification] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._changed:
                    receiver.received.append(Notification(self.path.strip("/"), body))
                    receiver._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(
        self, match: Callable[[Notification], bool], timeout: float, *, between: Callable[[], None]
    ) -> Notification:
        """The first notification ``match`` accepts; ``between`` runs while waiting
        (it drives traffic), at least once."""
        deadline = time.monotonic() + timeout
        while True:
            between()
            with self._changed:
                for notification in self.received:
                    if match(notification):
                        return notification
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no matching notification in {timeout} s: {self.received}"
                    )
                self._changed.wait(0.5)


def shortened_rules(directory: Path) -> list[Path]:
    """The repository's rule files with `for:` at 1s and 5-minute windows at 10s."""
    directory.mkdir()
    written = []
    for path in RULES:
        document = load_yaml(path)
        for group in document["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                rule["expr"] = rule["expr"].replace("[5m]", f"[{TEST_WINDOW}]")
                if "for" in rule:
                    rule["for"] = "1s"
        out = directory / path.name
        out.write_text(yaml.safe_dump(document))
        written.append(out)
    return written


def prometheus_config(workdir: Path, *, target: str, token: str, alertmanager_port: int) -> Path:
    """The deployed configuration's alerting and scrape authorization, with a static
    target instead of Kubernetes discovery."""
    deployed = load_yaml(PROMETHEUS_CONFIG)
    (platform_job,) = [j for j in deployed["scrape_configs"] if j["job_name"] == "mlops-platform"]
    token_file = workdir / "metrics-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    alerting = deployed["alerting"]["alertmanagers"][0]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in shortened_rules(workdir / "rules")],
        "alerting": {
            "alertmanagers": [
                {
                    "path_prefix": alerting["path_prefix"],
                    "static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}],
                }
            ]
        },
        "scrape_configs": [
            {
                "job_name": "mlops",
                "metrics_path": platform_job["metrics_path"],
                "authorization": {
                    **platform_job["authorization"],
                    "credentials_file": str(token_file),
                },
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(workdir: Path, webhook_port: int) -> Path:
    """The repository's routes and inhibitions; receivers become local webhooks."""
    config = load_yaml(ALERTMANAGER_CONFIG)
    config["global"] = {"resolve_timeout": "5m"}
    config["receivers"] = [
        {
            "name": r["name"],
            "webhook_configs": [
                {"url": f"http://127.0.0.1:{webhook_port}/{r['name']}", "send_resolved": True}
            ],
        }
        for r in config["receivers"]
    ]

    def quicken(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            quicken(child)

    quicken(config["route"])
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Server:
    """A process started here, stopped by its own PID."""

    def __init__(self, command: list[str], log: Path, ready_url: str) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{command[0]} not ready: {log.read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_alertmanager(workdir: Path, webhook_port: int) -> tuple[Server, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/alertmanager"
    server = Server(
        [
            binary("prometheus-alertmanager"),
            f"--config.file={alertmanager_config(workdir, webhook_port)}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.route-prefix=/alertmanager",
            "--cluster.listen-address=",
        ],
        workdir / "alertmanager.log",
        f"{url}/-/ready",
    )
    return server, url


def start_prometheus(
    workdir: Path, *, target: str, token: str, alertmanager_url: str
) -> tuple[Server, str]:
    port = free_port()
    am_port = int(alertmanager_url.split(":")[2].split("/")[0])
    config = prometheus_config(workdir, target=target, token=token, alertmanager_port=am_port)
    server = Server(
        [
            binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        workdir / "prometheus.log",
        f"http://127.0.0.1:{port}/-/ready",
    )
    return server, f"http://127.0.0.1:{port}"
