"""``POST /api/v1/models/predict`` and ``POST /api/v1/models/{name}/predict``.

Kept thin and fast: the body is parsed with orjson (no pydantic model per
request), the caller is authenticated through the same gate as the rest of the
API, and the answer is serialised straight from numpy arrays.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops.api.deps import bearer_credential
from mlops.api.openapi import error_responses
from mlops.errors import BadRequest, Invalid
from mlops.registry.schemas import NAME_PATTERN
from mlops.serving.dataplane import DataPlane, PredictResult, check_probabilities
from mlops.serving.validation import invalid_json_message

router = APIRouter(prefix="/api/v1", tags=["inference"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {
                            "type": "array",
                            "description": "Rows: lists of numbers in signature order, or "
                            "objects {feature: value} when the signature names features.",
                            "items": {},
                        },
                        "return_probabilities": {"type": "boolean", "default": False},
                    },
                },
                "example": {"data": [[1, 2, 3, 4, 5]]},
            }
        },
    },
    "responses": {
        "200": {
            "description": "Predictions, one per row.",
            "content": {
                "application/json": {"example": {"model": "demo", "version": 1, "predictions": [1]}}
            },
        }
    },
}

# 409: the model has no version to serve; 500: the version failed on this input;
# 503: it failed to load, or the token check could not reach Redis or the database.
_ERRORS = error_responses(400, 401, 404, 409, 413, 422, 500, 503)


def _parse(body: bytes) -> tuple[Any, bool, bool]:
    """(data, return_probabilities, whether the rows may hold JSON booleans)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            invalid_json_message("request body", body, exc), code="invalid_json"
        ) from None
    if not isinstance(payload, dict) or "data" not in payload:
        raise Invalid(
            'expected a JSON object {"data": [[...], ...]} with one row per prediction',
            code="invalid_input",
        )
    unknown = set(payload) - {"data", "return_probabilities"}
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(sorted(unknown))}", code="invalid_input")
    probabilities = payload.get("return_probabilities", False)
    if not isinstance(probabilities, bool):
        raise Invalid("return_probabilities must be true or false", code="invalid_input")
    # Any true/false in the text beyond return_probabilities' own may be in the rows.
    literals = body.count(b"true") + body.count(b"false")
    return payload["data"], probabilities, literals > ("return_probabilities" in payload)


def _answer_bytes(result: PredictResult, with_probabilities: bool) -> bytes:
    body: dict[str, Any] = {
        "model": result.model,
        "version": result.version,
        "predictions": result.prediction.values,
    }
    if with_probabilities:
        body["probabilities"] = result.prediction.probabilities
        body["classes"] = result.loaded.spec.signature.classes
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


async def run_predict(
    plane: DataPlane,
    body: bytes,
    *,
    name: str | None,
    version: int | None,
    alias: str | None,
    routing_key: str | None,
    caller: int | None = None,
) -> tuple[bytes, int]:
    """The predict call shared by the fast path and the documented route: (JSON, version).
    ``caller``: the user id (see ``DataPlane.predict``)."""
    if version is not None and alias is not None:
        raise Invalid("give ?version or ?alias, not both", code="invalid_input")
    data, with_probabilities, may_hold_booleans = _parse(body)
    result = await plane.predict(
        name or plane.default_model(),
        data,
        version=version,
        alias=alias,
        routing_key=routing_key,
        may_hold_booleans=may_hold_booleans,
        caller=caller,
    )
    if with_probabilities:
        check_probabilities(result.loaded)
    return _answer_bytes(result, with_probabilities), result.version


async def _predict(
    request: Request, name: str | None, version: int | None, alias: str | None
) -> Response:
    unknown = request.query_params.keys() - {"version", "alias"}
    if unknown:
        # A misspelt ?version would otherwise be ignored, and the policy's version answer.
        raise Invalid(
            f"unknown query parameters: {', '.join(sorted(unknown))}; "
            "use ?version=N or ?alias=NAME",
            code="validation_error",
        )
    principal = await request.app.state.ctx.gate.authenticate(bearer_credential(request))
    content, served = await run_predict(
        request.app.state.dataplane,
        await request.body(),
        name=name,
        version=version,
        alias=alias,
        routing_key=request.headers.get("x-routing-key"),
        caller=principal.user_id,
    )
    return Response(
        content, media_type="application/json", headers={"X-Model-Version": str(served)}
    )


VersionQuery = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="Serve this version exactly.")
]
AliasQuery = Annotated[
    str | None, Query(pattern=NAME_PATTERN, description="Serve the version this alias names.")
]


@router.post("/models/predict", openapi_extra=_BODY_DOC, responses=_ERRORS)
async def predict_default(
    request: Request, version: VersionQuery = None, alias: AliasQuery = None
) -> Response:
    """Predict with the default model (``MLOPS_DEFAULT_MODEL`` or the one an admin set)."""
    return await _predict(request, None, version, alias)


@router.api_route(
    "/models/predict",
    methods=["GET", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
    response_model=None,
)
async def predict_other_methods() -> NoReturn:
    """``predict`` is no model name (it is reserved): GET here is not a model's page."""
    raise StarletteHTTPException(405)


@router.post("/models/{name}/predict", openapi_extra=_BODY_DOC, responses=_ERRORS)
async def predict(
    request: Request,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    version: VersionQuery = None,
    alias: AliasQuery = None,
) -> Response:
    """Predict with a model. Without ``?version``/``?alias`` its deployment policy picks
    the version (the policy's alias, a canary share, a shadow copy). Send the same
    ``X-Routing-Key`` header to always meet the same version during a canary."""
    return await _predict(request, name, version, alias)
