"""How Istio picks a VirtualService route for a request (the subset of its matching
rules our manifests use: exact, prefix and RE2 regex on the whole string, for the
URI and the method; the first matching http entry wins)."""

from __future__ import annotations

import re
from typing import Any

Doc = dict[str, Any]


def string_matches(rule: dict[str, str], value: str) -> bool:
    if "exact" in rule:
        return value == rule["exact"]
    if "prefix" in rule:
        return value.startswith(rule["prefix"])
    if "regex" in rule:
        # Envoy's safe_regex matches the whole value.
        return re.fullmatch(rule["regex"], value) is not None
    raise AssertionError(f"unsupported string match {rule}")


def request_matches(match: Doc, method: str, path: str) -> bool:
    unsupported = set(match) - {"uri", "method", "name"}
    assert not unsupported, f"the evaluator does not know {unsupported}"
    if "uri" in match and not string_matches(match["uri"], path):
        return False
    return "method" not in match or string_matches(match["method"], method)


def route(vs: Doc, method: str, path: str) -> tuple[int, Doc] | None:
    """(index in http, first destination) of the entry that takes the request."""
    for index, entry in enumerate(vs["spec"]["http"]):
        matches = entry.get("match")
        if not matches or any(request_matches(m, method, path) for m in matches):
            destination: Doc = entry["route"][0]["destination"]
            return index, destination
    return None


def service_name(host: str, namespace: str) -> str:
    """The Service a destination host names (short or fully qualified, in namespace)."""
    suffix = f".{namespace}.svc.cluster.local"
    if host.endswith(suffix):
        return host[: -len(suffix)]
    assert "." not in host, f"destination {host} is outside {namespace}"
    return host
