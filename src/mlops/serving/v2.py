"""The Open Inference Protocol (KServe V2) over REST, with the binary tensor extension.

Stock clients work with their defaults (``tritonclient.http`` sends and asks for
binary tensors). Health endpoints need no credentials (probes); the rest take
the same bearer token or API key as the platform's API.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mlops import __version__
from mlops.api.deps import bearer_credential
from mlops.auth.principal import Principal
from mlops.errors import BadRequest, Invalid, NotFound
from mlops.registry.schemas import NAME_PATTERN
from mlops.serving.catalog import VersionSpec
from mlops.serving.codecs import (
    datatype_of,
    decode_input,
    encode_output,
    json_data,
    split_binary,
    take_binary,
)
from mlops.serving.dataplane import DataPlane, PredictResult
from mlops.serving.oip_errors import ERROR_CODE_HEADER
from mlops.serving.validation import invalid_json_message

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
ModelName = Annotated[str, Path(pattern=NAME_PATTERN)]
HEADER_LENGTH = "inference-header-content-length"


class OipError(BaseModel):
    """An error, as the Open Inference Protocol has it (``OipErrorMiddleware`` renders it)."""

    error: str = Field(description="What went wrong and what is expected, for people.")


_WHEN = {
    400: "The body is not valid JSON, or its binary part does not match its header.",
    401: "No valid token or API key.",
    404: "No such model or version.",
    409: "The model has no version to serve (its alias points at none).",
    413: "The body or the number of rows is over the limit.",
    422: "The request is well-formed but its content is not acceptable.",
    500: "The version failed on this input.",
    503: "The version failed to load (the reason is in the message), or the token check "
    "could not reach the database or Redis.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for the protocol's error answers (FastAPI would document its own 422)."""
    header = {
        ERROR_CODE_HEADER: {
            "description": "The platform's stable error code, e.g. model_not_found.",
            "schema": {"type": "string"},
        }
    }
    return {
        status: {"model": OipError, "description": _WHEN[status], "headers": header}
        for status in statuses
    }


# 503 on reads: the token check could not reach Redis or the database.
_READ_ERRORS = _errors(401, 404, 422, 503)


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool = Field(description="Whether this process has the version loaded.")


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ServerReady, "description": "Loading models or shutting down."}
}
_MODEL_NOT_READY: dict[int | str, dict[str, Any]] = {
    **_READ_ERRORS,
    503: {
        "model": ModelReady | OipError,
        "description": "Not loaded here (ready: false), or the token check failed.",
    },
}
_INFER_ERRORS = _errors(400, 401, 404, 409, 413, 422, 500, 503)


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.dataplane
    return plane


async def _authenticate(request: Request) -> Principal:
    principal: Principal = await request.app.state.ctx.gate.authenticate(bearer_credential(request))
    return principal


def _version_number(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise NotFound(
            f"no model version {raw!r}: versions are 1, 2, 3...", code="version_not_found"
        )
    return int(raw)


@router.get("")
async def server_metadata() -> dict[str, Any]:
    return {"name": "mlops-platform", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", response_model=ServerReady, responses=_NOT_READY)
async def ready(request: Request) -> JSONResponse:
    ok = not request.app.state.shutting_down and request.app.state.serving_ready
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


def _spec(plane: DataPlane, name: str, version: int | None) -> VersionSpec:
    model = plane.manager.model_spec(name)
    number = version if version is not None else model.primary_version
    if number is None or number not in model.versions:
        raise NotFound(f"model {name!r} has no servable version {number}", code="version_not_found")
    return model.versions[number]


def _metadata(plane: DataPlane, spec: VersionSpec) -> dict[str, Any]:
    signature = spec.signature
    datatype = {"float32": "FP32", "float64": "FP64", "int64": "INT64"}[signature.input_dtype]
    outputs: list[dict[str, Any]] = [
        {
            "name": "predictions",
            "datatype": "FP64" if signature.output_kind == "regression" else "INT64",
            "shape": [-1],
        }
    ]
    if signature.has_probabilities:
        outputs.append(
            {
                "name": "probabilities",
                "datatype": "FP64",
                "shape": [-1, len(signature.classes or [])],
            }
        )
    model = plane.manager.model_spec(spec.model)
    return {
        "name": spec.model,
        "versions": [str(v) for v in sorted(model.versions)],
        "platform": f"mlops-{spec.format}",
        "inputs": [{"name": "input", "datatype": datatype, "shape": [-1, signature.n_features]}],
        "outputs": outputs,
        "parameters": {
            "version": spec.version,
            "feature_names": signature.feature_names,
            "classes": signature.classes,
        },
    }


@router.get("/models/{name}", responses=_READ_ERRORS)
async def model_metadata(name: ModelName, request: Request) -> dict[str, Any]:
    await _authenticate(request)
    plane = _plane(request)
    return _metadata(plane, _spec(plane, name, None))


@router.get("/models/{name}/versions/{version}", responses=_READ_ERRORS)
async def version_metadata(name: ModelName, version: str, request: Request) -> dict[str, Any]:
    await _authenticate(request)
    plane = _plane(request)
    return _metadata(plane, _spec(plane, name, _version_number(version)))


async def _ready(request: Request, name: str, version: int | None) -> JSONResponse:
    await _authenticate(request)
    plane = _plane(request)
    spec = _spec(plane, name, version)
    ok = (spec.model, spec.version) in plane.manager.loaded
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)


@router.get("/models/{name}/ready", response_model=ModelReady, responses=_MODEL_NOT_READY)
async def model_ready(name: ModelName, request: Request) -> JSONResponse:
    return await _ready(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReady,
    responses=_MODEL_NOT_READY,
)
async def version_ready(name: ModelName, version: str, request: Request) -> JSONResponse:
    return await _ready(request, name, _version_number(version))


def _inputs(
    payload: dict[str, Any], binary: memoryview | None, may_hold_booleans: bool, max_rows: int
) -> np.ndarray:
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise Invalid("'inputs' must be a non-empty list of tensors", code="invalid_input")
    arrays = []
    offset = 0
    for tensor in inputs:
        params = tensor.get("parameters") or {} if isinstance(tensor, dict) else {}
        chunk = None
        if "binary_data_size" in params:
            chunk, offset = take_binary(binary, offset, params["binary_data_size"])
        arrays.append(
            decode_input(tensor, chunk, may_hold_booleans=may_hold_booleans, max_rows=max_rows)
        )
    if len(arrays) == 1:
        return arrays[0]
    # One [rows, 1] tensor per feature, in signature order.
    if any(a.ndim != 2 or a.shape[1] != 1 for a in arrays):
        raise Invalid(
            "send one input of shape [rows, features], or one [rows, 1] input per feature",
            code="invalid_input",
        )
    return np.hstack(arrays)


def _outputs(result: PredictResult) -> dict[str, np.ndarray]:
    outputs = {"predictions": result.prediction.values}
    if result.prediction.probabilities is not None:
        outputs["probabilities"] = result.prediction.probabilities
    return outputs


def _wanted(payload: dict[str, Any], available: dict[str, np.ndarray]) -> list[tuple[str, bool]]:
    default_binary = bool((payload.get("parameters") or {}).get("binary_data_output", False))
    requested = payload.get("outputs")
    if not requested:
        return [(name, default_binary) for name in available]
    wanted = []
    for item in requested:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in available:
            raise Invalid(
                f"unknown output {name!r}; this model has {', '.join(available)}",
                code="invalid_input",
            )
        binary = (item.get("parameters") or {}).get("binary_data", default_binary)
        wanted.append((name, bool(binary)))
    return wanted


def _response(payload: dict[str, Any], result: PredictResult) -> Response:
    available = _outputs(result)
    header: dict[str, Any] = {
        "model_name": result.model,
        "model_version": str(result.version),
        "outputs": [],
    }
    if "id" in payload:
        header["id"] = payload["id"]
    blobs = []
    for name, binary in _wanted(payload, available):
        array = available[name]
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": datatype_of(array),
            "shape": list(array.shape),
        }
        if binary:
            blob = encode_output(array)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = json_data(array)
        header["outputs"].append(tensor)
    head = orjson.dumps(header)
    headers = {"X-Model-Version": str(result.version)}
    if not blobs:
        return Response(head, media_type="application/json", headers=headers)
    headers["Inference-Header-Content-Length"] = str(len(head))
    return Response(
        b"".join([head, *blobs]), media_type="application/octet-stream", headers=headers
    )


async def _infer(request: Request, name: str, version: int | None) -> Response:
    principal = await _authenticate(request)
    plane = _plane(request)
    head, binary = split_binary(await request.body(), request.headers.get(HEADER_LENGTH))
    try:
        payload = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        message = invalid_json_message("the inference request", head, exc)
        raise BadRequest(message, code="invalid_json") from None
    if not isinstance(payload, dict):
        raise Invalid("the inference request must be a JSON object", code="invalid_input")
    result = await plane.predict(
        name,
        None,
        version=version,
        routing_key=request.headers.get("x-routing-key"),
        array=_inputs(payload, binary, b"true" in head or b"false" in head, plane.max_rows),
        caller=principal.user_id,
    )
    return _response(payload, result)


@router.post("/models/{name}/infer", responses=_INFER_ERRORS)
async def infer(name: ModelName, request: Request) -> Response:
    return await _infer(request, name, None)


@router.post("/models/{name}/versions/{version}/infer", responses=_INFER_ERRORS)
async def infer_version(name: ModelName, version: str, request: Request) -> Response:
    return await _infer(request, name, _version_number(version))
