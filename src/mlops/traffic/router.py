"""``GET /api/v1/models/{name}/traffic``: the web UI's live charts, per version and role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from mlops.api.deps import CurrentPrincipal, SessionDep
from mlops.api.openapi import AUTHENTICATED, error_responses
from mlops.deployments import service as deployments
from mlops.deployments.schemas import DeploymentPolicy
from mlops.registry.schemas import NAME_PATTERN
from mlops.registry.service import require_model
from mlops.traffic.prometheus import TrafficUnavailable, query_traffic
from mlops.traffic.sampler import TrafficSampler
from mlops.traffic.schemas import Role, Source, TrafficPoint, TrafficRead, VersionSeries

router = APIRouter(
    prefix="/api/v1", tags=["deployments"], responses=error_responses(*AUTHENTICATED)
)
ModelName = Annotated[str, Path(pattern=NAME_PATTERN)]
PROMETHEUS_STEP_S = 10.0


@router.get(
    "/models/{name}/traffic", response_model=TrafficRead, responses=error_responses(404, 422)
)
async def model_traffic(
    name: ModelName,
    request: Request,
    _: CurrentPrincipal,
    session: SessionDep,
    minutes: Annotated[int, Query(ge=1, le=60, description="How far back.")] = 15,
) -> TrafficRead:
    """Requests/s, p95 latency and error rate of each version over the last minutes,
    with its role in the deployment (primary, canary, shadow). From Prometheus when
    ``MLOPS_PROMETHEUS_URL`` is set, else from the model server in this process."""
    model = await require_model(session=session, name=name)
    row = await deployments.get_deployment(session=session, model=model)
    policy = DeploymentPolicy() if row is None else DeploymentPolicy.model_validate(row.policy)
    primary = await deployments.primary_version(session=session, model=model, policy=policy)
    window = minutes * 60.0
    prometheus_url = request.app.state.ctx.settings.prometheus_url
    sampler: TrafficSampler | None = getattr(request.app.state, "traffic_sampler", None)
    points: dict[int, list[TrafficPoint]]
    source: Source
    if prometheus_url:
        source, step = "prometheus", PROMETHEUS_STEP_S
        points = await query_traffic(prometheus_url, name, window=window, step=step)
    elif sampler is not None:
        source, step = "in-process", sampler.interval
        points = sampler.series(name, window=window)
    else:
        raise TrafficUnavailable(
            "this API server runs without a model server and MLOPS_PROMETHEUS_URL is unset: "
            "set it to the Prometheus that scrapes the model servers"
        )

    def role(version: int) -> Role:
        if policy.canary is not None and policy.canary.version == version:
            return "canary"
        if policy.shadow is not None and policy.shadow.version == version:
            return "shadow"
        return "primary" if version == primary else "other"

    return TrafficRead(
        model=name,
        source=source,
        window_s=window,
        step_s=step,
        series=[
            VersionSeries(version=v, role=role(v), points=p) for v, p in sorted(points.items())
        ],
    )
