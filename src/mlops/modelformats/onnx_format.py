"""ONNX files: parsed without touching the file system around them, then checked.

Tensors stored as external data are refused: loading them means opening
paths named inside the upload (``../../etc/passwd``), which would let a model
read server files. The model is parsed from bytes, never with
``load_external_data``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import onnx.checker
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from mlops.errors import BadRequest, Invalid

from .signature import InputDtype, Signature, to_python_labels

# protobuf cannot parse (and the checker cannot check) a message above 2 GiB.
MAX_ONNX_BYTES = onnx.checker.MAXIMUM_PROTOBUF
_DTYPES: dict[int, InputDtype] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
}
_LABEL_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.STRING}
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE}
_CLASS_ATTRS = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")


def load_onnx(path: Path) -> tuple[onnx.ModelProto, bytes]:
    """The checked model in ``path`` and its bytes (what onnxruntime should load)."""
    size = path.stat().st_size
    if size >= MAX_ONNX_BYTES:
        raise BadRequest(
            f"ONNX models of {size} bytes cannot be checked safely (limit {MAX_ONNX_BYTES})",
            code="model_too_large",
        )
    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _invalid(f"the protobuf does not parse ({exc})") from exc
    if not model.HasField("graph") or not model.graph.node:
        raise _invalid("it has no graph (truncated or not an ONNX model)")
    external = sorted({t.name for t in _tensors(model) if _is_external(t)})
    if external:
        raise BadRequest(
            "ONNX models that keep tensors in external data files are not accepted "
            f"(tensors: {', '.join(external[:5])}); save the model as a single file "
            "with onnx.save_model(model, path, save_as_external_data=False).",
            code="external_data",
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise _invalid(f"onnx.checker rejected it: {exc}") from exc
    return model, data


def onnx_signature(model: onnx.ModelProto) -> Signature:
    """Read the signature from the graph's inputs and outputs."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    shapes = [(_elem_type(i), _dims(i)) for i in inputs]
    if len(inputs) == 1 and len(shapes[0][1]) == 2 and (shapes[0][1][1] or 0) > 0:
        elem, dims = shapes[0]
        n_features, names = int(dims[1] or 0), None
    elif (
        len(inputs) > 1
        and all(len(d) == 2 and d[1] == 1 for _, d in shapes)
        and len({e for e, _ in shapes}) == 1
    ):
        elem, n_features, names = shapes[0][0], len(inputs), [i.name for i in inputs]
    else:
        raise _invalid(
            "expected one input of shape [N, n_features] or one [N, 1] input per feature, got "
            + ", ".join(f"{i.name}{_dims(i)}" for i in inputs)
        )
    if elem not in _DTYPES:
        raise _invalid(
            f"input element type {onnx.TensorProto.DataType.Name(elem)} is not supported"
        )
    outputs = list(graph.output)
    first = _elem_type(outputs[0]) if outputs else None
    if len(outputs) == 1 and first in _FLOAT_TYPES:
        kind, has_proba = "regression", False
    elif len(outputs) in (1, 2) and first in _LABEL_TYPES:
        kind, has_proba = "class_labels", len(outputs) == 2
    else:
        raise _invalid(
            "expected one regression output, or a label output optionally followed by "
            "probabilities, got " + ", ".join(o.name for o in outputs)
        )
    return Signature(
        n_features=n_features,
        feature_names=names,
        input_dtype=_DTYPES[elem],
        output_kind="regression" if kind == "regression" else "class_labels",
        classes=_classes(model) if kind == "class_labels" else None,
        has_probabilities=has_proba,
    )


def onnx_details(model: onnx.ModelProto) -> dict[str, Any]:
    return {
        "library": "onnx",
        "estimator": model.graph.name or "graph",
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "ir_version": model.ir_version,
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "inputs": [i.name for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
    }


def _classes(model: onnx.ModelProto) -> list[int | float | str] | None:
    """Class labels from ZipMap or the classifier node; ``None`` if ambiguous."""
    found: list[list[int | float | str]] = []
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name in _CLASS_ATTRS:
                values = attr.ints or [s.decode("utf-8", "replace") for s in attr.strings]
                found.append(to_python_labels(list(values)))
                if node.op_type == "ZipMap":
                    return found[-1]
    distinct = {tuple(f) for f in found}
    return list(distinct.pop()) if len(distinct) == 1 else None


def _elem_type(value: onnx.ValueInfoProto) -> int | None:
    if value.type.WhichOneof("value") != "tensor_type":
        return None
    return int(value.type.tensor_type.elem_type)


def _dims(value: onnx.ValueInfoProto) -> list[int | None]:
    if value.type.WhichOneof("value") != "tensor_type":
        return []
    return [
        int(d.dim_value) if d.HasField("dim_value") else None
        for d in value.type.tensor_type.shape.dim
    ]


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor in the model, including those in subgraphs and functions."""
    graphs = [model.graph, *(t.initialization for t in model.training_info)]
    graphs += [t.algorithm for t in model.training_info]
    nodes = [n for f in model.functions for n in f.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield from (sparse.values, sparse.indices)
            nodes.extend(graph.node)
            continue
        for attr in nodes.pop().attribute:
            yield from attr.tensors
            if attr.HasField("t"):
                yield attr.t
            for sparse in [
                *attr.sparse_tensors,
                *([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []),
            ]:
                yield from (sparse.values, sparse.indices)
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)


def _invalid(reason: str) -> Invalid:
    return Invalid(f"invalid ONNX model: {reason}", code="model_invalid")
