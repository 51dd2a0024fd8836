"""The ceiling of bench/serve_bench.sh: the least a Python model server can do per request.

A bare ASGI app (no framework, no authentication, no metrics, no logging, no batching,
no thread hop): it reads the body, parses it with orjson, runs onnxruntime (one
intra-op thread, sequential, all graph optimizations, as the platform runs it) on
the calling thread, and answers the labels with orjson. What the platform does on
top of this (auth, validation, routing, batching, metrics) is the gap between the two.

    CEILING_MODEL=demo.skops uvicorn serve_ceiling_app:app --app-dir bench \\
        --loop uvloop --http httptools --no-access-log

``CEILING_MODEL`` is a ``.onnx`` file, or a scikit-learn ``.skops`` file that is
converted at start-up with skl2onnx (float32 input, no ZipMap), as the platform
converts the demo model. The skops file is loaded trusting the types it names: use
it only with a model you made (here, the platform's own demo model).

    POST <any path>   {"data": [[f0, ..., fn], ...]}  ->  {"predictions": [label, ...]}
    GET  <any path>   {"status": "ok"}  (health)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# As the platform runs onnxruntime: without its telemetry (src/mlops/__init__.py).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np
import onnxruntime as ort
import orjson

MAX_BODY = 16 * 1024**2
_JSON = [(b"content-type", b"application/json")]


def _onnx_bytes(path: Path) -> bytes:
    if path.suffix == ".onnx":
        return path.read_bytes()
    if path.suffix != ".skops":
        raise SystemExit(f"CEILING_MODEL must be a .onnx or .skops file, got {path}")
    import skops.io as sio
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    n_features = int(model.n_features_in_)
    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    proto = to_onnx(
        model, initial_types=[("input", FloatTensorType([None, n_features]))], options=options
    )
    return bytes(proto.SerializeToString())


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(_onnx_bytes(path), options, providers=["CPUExecutionProvider"])


_model_path = os.environ.get("CEILING_MODEL")
if not _model_path:
    raise SystemExit("set CEILING_MODEL to a .onnx or .skops file")
SESSION = _session(Path(_model_path))
INPUT = SESSION.get_inputs()[0]
N_FEATURES = INPUT.shape[1] if isinstance(INPUT.shape[1], int) else None
INPUT_DTYPE = np.float64 if INPUT.type == "tensor(double)" else np.float32
LABEL = SESSION.get_outputs()[0].name
SESSION.run([LABEL], {INPUT.name: np.zeros((4, N_FEATURES or 1), dtype=INPUT_DTYPE)})  # warm
print(
    f"serve_ceiling_app: {_model_path} -> onnxruntime {ort.__version__}, input {INPUT.name} "
    f"{INPUT.type} {INPUT.shape}, output {LABEL}",
    file=sys.stderr,
    flush=True,
)


def predict(body: bytes) -> tuple[int, bytes]:
    try:
        payload = orjson.loads(body)
        x = np.asarray(payload["data"], dtype=INPUT_DTYPE)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return 400, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
    if x.ndim != 2 or (N_FEATURES is not None and x.shape[1] != N_FEATURES):
        return 400, orjson.dumps({"error": f"expected rows of {N_FEATURES} numbers"})
    labels = SESSION.run([LABEL], {INPUT.name: x})[0]
    return 200, orjson.dumps({"predictions": labels}, option=orjson.OPT_SERIALIZE_NUMPY)


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            await _answer(send, 413, b'{"error":"body too large"}')
            return
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    status, body = predict(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    await _answer(send, status, body)
