"""Shared by verify_deployment.py and smoke_tests.py: targets, credentials, results.

Credentials come from the environment: ``MLOPS_API_KEY``, or ``MLOPS_USERNAME`` and
``MLOPS_PASSWORD``; ``MLOPS_METRICS_TOKEN`` for /metrics outside development.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.deployment.http_client import Client, HTTPFailure, Reply

ENVIRONMENTS = Path(__file__).with_name("environments.yaml")


@dataclass
class Target:
    name: str
    base_url: str
    model_url: str
    web_url: str
    namespace: str | None


@dataclass
class Result:
    check: str
    ok: bool
    detail: str


class CheckFailed(Exception):
    """A check's reason to fail, shown in the table."""


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--environment", default="local", help="a target of environments.yaml")
    p.add_argument("--base-url", help="the API's URL (overrides the environment's)")
    p.add_argument("--model-url", help="the model server's URL (default: the base URL)")
    p.add_argument("--web-url", help="the web UI's URL (default: the base URL)")
    p.add_argument("--namespace", help="Kubernetes namespace (overrides the environment's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    return p


def read_environments(text: str) -> dict[str, dict[str, str | None]]:
    """environments.yaml: named targets, each a mapping of plain values (a YAML subset
    read without PyYAML, which a bare ``python`` does not have)."""
    found: dict[str, dict[str, str | None]] = {}
    current: dict[str, str | None] | None = None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(":")
        if not raw.startswith(" "):
            current = found.setdefault(key, {})
        elif current is not None:
            value = value.strip().strip("'\"")
            current[key] = None if value in ("", "null", "~") else value
    return found


def target_of(args: argparse.Namespace) -> Target:
    environments = read_environments(ENVIRONMENTS.read_text())
    if args.environment not in environments:
        sys.exit(
            f"unknown environment {args.environment!r}: expected one of {sorted(environments)}"
        )
    env = environments[args.environment]
    base = (args.base_url or env["base_url"] or "").rstrip("/")
    model = (args.model_url or (None if args.base_url else env.get("model_url")) or base).rstrip(
        "/"
    )
    web = (args.web_url or (None if args.base_url else env.get("web_url")) or base).rstrip("/")
    namespace = args.namespace or env.get("namespace")
    return Target(args.environment, base, model, web, namespace)


def client(timeout: float) -> Client:
    return Client(timeout)


def credential(http: Client, base_url: str) -> str:
    """A bearer credential: the API key, or a login token."""
    key = os.environ.get("MLOPS_API_KEY")
    if key:
        return key
    username, password = os.environ.get("MLOPS_USERNAME"), os.environ.get("MLOPS_PASSWORD")
    if not username or not password:
        raise CheckFailed("set MLOPS_API_KEY, or MLOPS_USERNAME and MLOPS_PASSWORD")
    response = http.post(
        f"{base_url}/api/v1/auth/login", json={"username": username, "password": password}
    )
    expect(response, 200, "login")
    return str(response.json()["access_token"])


def expect(response: Reply, status: int, what: str) -> Any:
    if response.status_code != status:
        raise CheckFailed(f"{what}: HTTP {response.status_code} {response.text[:200]}")
    return response.json() if "json" in (response.headers.get("content-type") or "") else None


def run_checks(checks: list[tuple[str, Callable[[], str]]]) -> list[Result]:
    results = []
    for name, check in checks:
        try:
            results.append(Result(name, True, check()))
        except CheckFailed as exc:
            results.append(Result(name, False, str(exc)))
        except HTTPFailure as exc:
            results.append(Result(name, False, str(exc)))
        except (ValueError, KeyError, TypeError) as exc:
            # Not the platform's answer (a proxy's error page, another service).
            results.append(Result(name, False, f"unexpected answer: {type(exc).__name__} {exc}"))
    return results


def report(results: list[Result], as_json: bool) -> int:
    failed = [r for r in results if not r.ok]
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(r) for r in results]}, indent=2))
    else:
        width = max(len(r.check) for r in results)
        for r in results:
            print(f"{'PASS' if r.ok else 'FAIL'}  {r.check:<{width}}  {r.detail}")
        print(f"{len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0
