"""Debian's haproxy as a local load balancer standing in for a Kubernetes Service: it
health-checks each replica's ``/ready`` and sends requests only to those that pass.

The check settings follow the platform's drain (``MLOPS_SHUTDOWN_DELAY_SECONDS``): after
SIGTERM a replica answers ``/ready`` with 503 at once and keeps serving for the delay,
then closes its listener. haproxy takes it out after ``fall`` failed checks ``inter``
apart, each allowed ``timeout check``, so that sum must stay well inside the delay
(docs/reliability.md). No retries and no redispatch: a request sent to a replica that
refuses it reaches the client as an error, so the drill sees any gap in the drain.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.system_tools import system_tool
from tests.throwaway import free_port

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class HealthCheck:
    inter_s: float
    fall: int
    timeout_s: float

    @property
    def worst_case_s(self) -> float:
        """Longest time from ``/ready`` failing to the replica being out of rotation."""
        return self.inter_s * self.fall + self.timeout_s


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def config(port: int, backends: Sequence[tuple[str, int]], check: HealthCheck) -> str:
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check" for name, p in backends)
    return f"""\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 0

frontend predictions
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /ready
    http-check expect status 200
    timeout check {_ms(check.timeout_s)}
    default-server inter {_ms(check.inter_s)} fall {check.fall} rise 1
    http-response set-header X-Served-By %[srv_name]
{servers}
"""


@dataclass(frozen=True)
class LoadBalancer:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def haproxy(
    workdir: Path, backends: Sequence[tuple[str, int]], check: HealthCheck
) -> Iterator[LoadBalancer]:
    """haproxy in the foreground on a free port; stopped (by its PID) at the end."""
    binary = system_tool("haproxy")
    port = free_port()
    path = workdir / "haproxy.cfg"
    path.write_text(config(port, backends, check))
    log = workdir / "haproxy.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(path)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {log.read_text()}")
            time.sleep(0.05)
        yield LoadBalancer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.HTTPError:
        return False
    return True
