"""Traffic from Prometheus: every model-server replica's, as Prometheus scraped it."""

from __future__ import annotations

import time
from typing import Any

from mlops.errors import PlatformError
from mlops.traffic.schemas import TrafficPoint

TIMEOUT_S = 5.0
RATE_RANGE = "1m"


class TrafficUnavailable(PlatformError):
    status_code = 503
    code = "traffic_unavailable"


def _queries(model: str) -> dict[str, str]:
    # Model names are [a-z0-9._-]: nothing in one can end the label's string.
    sel = f'model="{model}"'
    total = f"sum by (version) (rate(mlops_predictions_total{{{sel}}}[{RATE_RANGE}]))"
    errors = (
        f'sum by (version) (rate(mlops_predictions_total{{{sel},outcome="error"}}[{RATE_RANGE}]))'
    )
    return {
        "rps": total,
        "error_rate": f"{errors} / {total}",
        "p95": "histogram_quantile(0.95, sum by (version, le) "
        f"(rate(mlops_prediction_duration_seconds_bucket{{{sel}}}[{RATE_RANGE}])))",
    }


def _number(raw: str) -> float | None:
    value = float(raw)
    return None if value != value or value in (float("inf"), float("-inf")) else value


async def query_traffic(
    base_url: str, model: str, *, window: float, step: float
) -> dict[int, list[TrafficPoint]]:
    import httpx  # only where MLOPS_PROMETHEUS_URL is set: ~0.2 s off every start

    end = time.time()
    params = {"start": f"{end - window:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    values: dict[str, dict[int, dict[float, float | None]]] = {}
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S) as client:
            for name, query in _queries(model).items():
                answer = await client.get("/api/v1/query_range", params={**params, "query": query})
                answer.raise_for_status()
                values[name] = _by_version(answer.json())
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise TrafficUnavailable(
            f"Prometheus at MLOPS_PROMETHEUS_URL did not answer the traffic query "
            f"({type(exc).__name__}); the charts come back when it does"
        ) from None
    found: dict[int, list[TrafficPoint]] = {}
    for version, rates in values.get("rps", {}).items():
        errors = values.get("error_rate", {}).get(version, {})
        p95 = values.get("p95", {}).get(version, {})
        found[version] = [
            TrafficPoint(
                t=t,
                rps=rps or 0.0,
                p95_ms=_ms(p95.get(t)),
                error_rate=errors.get(t),
            )
            for t, rps in sorted(rates.items())
        ]
    return found


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _by_version(body: dict[str, Any]) -> dict[int, dict[float, float | None]]:
    if body.get("status") != "success":
        raise ValueError(body.get("error", "query failed"))
    found: dict[int, dict[float, float | None]] = {}
    for series in body["data"]["result"]:
        version = int(series["metric"]["version"])
        found[version] = {float(t): _number(v) for t, v in series["values"]}
    return found
