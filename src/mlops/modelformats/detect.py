"""Deciding what an uploaded file is, by content, and accepting or refusing it.

The extension is only a claim: the content is sniffed first, pickles are
refused whatever they are called, and a file whose content is a different
known format than its extension says is refused as lying.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mlops.errors import BadRequest, Invalid, PlatformError

from .formats import BY_EXTENSION, open_model
from .library_errors import client_message
from .signature import FormatName, ModelInfo, Prediction, Signature, sample_input

FORMATS: dict[str, FormatName] = {ext: fmt.name for ext, fmt in BY_EXTENSION.items()}
PICKLE_EXTENSIONS = frozenset(
    {
        ".pkl",
        ".pickle",
        ".joblib",
        ".sav",
        ".dill",
        ".cloudpickle",
        ".cpkl",
        ".pt",
        ".pth",
        ".npy",
        ".npz",
    }
)
KERAS_EXTENSIONS = frozenset({".h5", ".hdf5", ".keras"})
CONVERT_HINT = (
    "Convert it on your own machine with `mlops models convert model.pkl --to onnx` "
    "(or `--to skops`) and upload the result."
)
_PICKLE_RISK = (
    "Loading a pickle (also joblib, cloudpickle and PyTorch .pt/.pth files) runs "
    "arbitrary code from the file, so the platform never opens one. "
)
_CONTENT_NAMES = {
    "onnx": "an ONNX model",
    "skops": "a .skops archive",
    "zip": "a zip archive",
    "hdf5": "an HDF5 (Keras) file",
    "json": "JSON",
    "ubjson": "UBJSON",
    "lightgbm": "a LightGBM text model",
}
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd")
SMOKE_ROWS = 4


def inspect_model(path: Path, filename: str) -> ModelInfo:
    """Accept ``path`` (uploaded as ``filename``) only if it is a safe model that
    loads and predicts; return its format, signature and details.

    Refusals: ``BadRequest`` with code ``empty_file``, ``unsafe_format``,
    ``unsupported_format``, ``format_mismatch``, ``external_data``,
    ``untrusted_types`` or ``model_too_large``; ``Invalid`` with code
    ``model_invalid`` when the file is of an accepted format but broken.
    Never unpickles anything.
    """
    ext = Path(filename).suffix.lower()
    if path.stat().st_size == 0:
        raise BadRequest(f"{filename} is empty.", code="empty_file")
    kind = sniff(path)
    if ext in PICKLE_EXTENSIONS or kind in ("pickle", "compressed", "pickle_zip"):
        raise BadRequest(_unsafe_message(filename, ext, kind), code="unsafe_format")
    if ext in KERAS_EXTENSIONS or kind == "hdf5":
        raise BadRequest(
            f"{filename}: Keras/HDF5 models are not supported (they can embed code in Lambda "
            "layers). Export the model to ONNX (for example with tf2onnx) and upload the .onnx.",
            code="unsupported_format",
        )
    if ext not in FORMATS:
        raise BadRequest(
            f"{filename}: unsupported model file type {ext or '(no extension)'!r}. Accepted: "
            ".onnx, .skops (scikit-learn), .json/.ubj (XGBoost), .txt (LightGBM). " + CONVERT_HINT,
            code="unsupported_format",
        )
    if kind not in BY_EXTENSION[ext].contents[ext]:
        raise BadRequest(
            f"{filename}: the extension says {FORMATS[ext]} ({ext}) but the content is "
            f"{_CONTENT_NAMES.get(kind, kind)}. Upload the file with its real extension.",
            code="format_mismatch",
        )
    fmt = FORMATS[ext]
    runtime, details = open_model(path, fmt)
    try:
        prediction = runtime.predict(sample_input(runtime.signature, rows=SMOKE_ROWS))
    except PlatformError:
        raise
    except Exception as exc:  # any library error means the model does not work
        raise Invalid(
            f"{filename}: the model failed to predict on a sample input: "
            + client_message(exc, library=fmt),
            code="model_invalid",
        ) from exc
    _check_output(filename, runtime.signature, prediction)
    return ModelInfo(format=fmt, signature=runtime.signature, details=details)


def sniff(path: Path) -> str:
    """The kind of content in ``path``, from its first bytes (never executes it)."""
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head.startswith(_COMPRESSED) or head[:2] in (
        b"\x78\x01",
        b"\x78\x5e",
        b"\x78\x9c",
        b"\x78\xda",
    ):
        return "compressed"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    stripped = head.lstrip()
    if head.startswith(b"{"):
        # Only a JSON-like file can be XGBoost's UBJSON: import its marker test (and
        # so xgboost) for these alone, never for the other formats' uploads.
        from .xgboost_format import is_ubjson

        if is_ubjson(head):
            return "ubjson"
    if stripped[:1] in (b"{", b"["):
        return "json"
    # ONNX writes ir_version (field 1, varint) first: tag byte 0x08.
    if head[:1] == b"\x08":
        return "onnx"
    return "unknown"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "unknown"
    if any(n.endswith((".pkl", ".pickle")) or "/data.pkl" in n for n in names):
        return "pickle_zip"  # PyTorch's default format is a zip of pickles
    return "skops" if "schema.json" in names else "zip"


def _unsafe_message(filename: str, ext: str, kind: str) -> str:
    if kind == "pickle" and ext not in PICKLE_EXTENSIONS:
        what = (
            f"{filename} is named {ext or 'without an extension'} but is actually a Python pickle. "
        )
    elif kind == "compressed":
        what = f"{filename} is compressed data (how joblib stores pickles). "
    elif kind == "pickle_zip":
        what = f"{filename} is a zip of pickles (PyTorch's format). "
    else:
        what = f"{filename} is a pickle-based file ({ext}). "
    return what + _PICKLE_RISK + CONVERT_HINT


def _check_output(filename: str, signature: Signature, prediction: Prediction) -> None:
    problems: list[str] = []
    if prediction.values.shape != (SMOKE_ROWS,):
        problems.append(f"expected one value per row, got shape {prediction.values.shape}")
    proba = prediction.probabilities
    if signature.has_probabilities:
        width = len(signature.classes) if signature.classes is not None else None
        if proba is None or proba.ndim != 2 or proba.shape[0] != SMOKE_ROWS:
            problems.append("expected a probability matrix with one row per input row")
        elif width is not None and proba.shape[1] != width:
            problems.append(f"expected {width} probability columns, got {proba.shape[1]}")
    if signature.output_kind == "regression" and prediction.values.dtype.kind not in "fiu":
        problems.append(f"regression output has dtype {prediction.values.dtype}")
    if problems:
        raise Invalid(f"{filename}: " + "; ".join(problems), code="model_invalid")
