#!/usr/bin/env python3
"""The guide's blue-green switch for the API server, with a health gate.

    python3 scripts/bluegreen.py status
    python3 scripts/bluegreen.py switch blue      # after applying api-server-blue.yaml
    python3 scripts/bluegreen.py rollback         # back to the other slot

Before it patches the VirtualServices (mlops-api-vs as the guide does, and mlops-app-vs,
whose API paths follow the same slot) it checks that the target slot's Deployment is
fully rolled out and that one of its pods answers 200 on /ready. The patch is the
guide's: replace /spec/http/0/route/0/destination/subset. Needs only kubectl (and the
mlops-deployer Role's rights); standard library only, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

NAMESPACE = "mlops-production"
VIRTUAL_SERVICES = ("mlops-api-vs", "mlops-app-vs")
DEPLOYMENTS = {"green": "api-server", "blue": "api-server-blue"}
SUBSET_PATH = "/spec/http/0/route/0/destination/subset"
READY_PROBE = (
    "import urllib.request as u; "
    "r = u.urlopen('http://127.0.0.1:8000/ready', timeout=5); print(r.status)"
)


class GateError(Exception):
    """The target slot is not fit to take traffic; nothing was changed."""


def kubectl(*args: str, input_text: str | None = None) -> str:
    command = [os.environ.get("KUBECTL", "kubectl"), "-n", NAMESPACE, *args]
    done = subprocess.run(command, capture_output=True, text=True, input=input_text, timeout=120)
    if done.returncode != 0:
        raise GateError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def current_slot() -> str:
    vs = json.loads(kubectl("get", "virtualservice", VIRTUAL_SERVICES[0], "-o", "json"))
    subset: str = vs["spec"]["http"][0]["route"][0]["destination"]["subset"]
    return subset


def check_slot(slot: str) -> None:
    """Raise GateError unless the slot's Deployment is rolled out and a pod is ready."""
    name = DEPLOYMENTS[slot]
    deployment: dict[str, Any] = json.loads(kubectl("get", "deployment", name, "-o", "json"))
    spec, status = deployment["spec"], deployment.get("status", {})
    wanted = spec.get("replicas", 1)
    if wanted < 1:
        raise GateError(f"deployment {name} has no replicas: scale it up first")
    if status.get("observedGeneration", 0) < deployment["metadata"]["generation"]:
        raise GateError(f"deployment {name} has a rollout the controller has not seen yet")
    for field in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if status.get(field, 0) < wanted:
            raise GateError(
                f"deployment {name}: {status.get(field, 0)} of {wanted} replicas {field[:-8]}; "
                f"wait for `kubectl rollout status deployment/{name} -n {NAMESPACE}`"
            )
    answer = kubectl(
        "exec", f"deployment/{name}", "-c", "api-server", "--", "python3", "-c", READY_PROBE
    )
    if answer.strip() != "200":
        raise GateError(f"deployment {name}: /ready answered {answer.strip()!r}, not 200")


def switch(slot: str) -> None:
    check_slot(slot)
    patch = json.dumps([{"op": "replace", "path": SUBSET_PATH, "value": slot}])
    for name in VIRTUAL_SERVICES:
        kubectl("patch", "virtualservice", name, "--type=json", "-p", patch)
    if current_slot() != slot:
        raise GateError(f"{VIRTUAL_SERVICES[0]} does not route to {slot} after the patch")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="print the slot the API's traffic goes to")
    to = commands.add_parser("switch", help="send the API's traffic to a slot, after the gate")
    to.add_argument("slot", choices=sorted(DEPLOYMENTS))
    commands.add_parser("rollback", help="send the traffic back to the other slot")
    args = parser.parse_args(argv)
    try:
        live = current_slot()
        if args.command == "status":
            print(live)
            return 0
        target = args.slot if args.command == "switch" else ("green" if live == "blue" else "blue")
        if target == live:
            print(f"traffic already goes to {live}")
            return 0
        switch(target)
    except GateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"traffic switched from {live} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
