"""The accepted model formats, each known by the module that opens it.

Nothing here imports a model library. ``open_model`` imports a format's runtime
module (and with it the format's library) the first time a file of that format
is opened, so a server whose models are all ONNX never imports scikit-learn,
XGBoost or LightGBM, and the CLI imports none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from .signature import FormatName

if TYPE_CHECKING:
    from .runtime import Runtime


class _Opener(Protocol):
    def __call__(self, path: Path) -> tuple[Runtime, dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ModelFormat:
    """One format: which file extensions claim it, which contents (as ``detect.sniff``
    names them) each extension may hold, and the module whose ``open_model(path)``
    checks and loads such a file. ``libraries`` are the distributions that load it,
    whose versions decide whether a cached ONNX conversion still holds."""

    name: FormatName
    contents: Mapping[str, frozenset[str]]
    module: str
    libraries: tuple[str, ...]


# "unknown" content goes to the opener, which explains what is wrong with the file.
FORMATS: dict[FormatName, ModelFormat] = {
    "onnx": ModelFormat(
        "onnx",
        {".onnx": frozenset({"onnx", "unknown"})},
        "mlops.modelformats.onnx_runtime",
        ("onnx", "onnxruntime"),
    ),
    "skops": ModelFormat(
        "skops",
        {".skops": frozenset({"skops", "zip", "unknown"})},
        "mlops.modelformats.sklearn_runtime",
        ("skops", "scikit-learn", "skl2onnx"),
    ),
    "xgboost": ModelFormat(
        "xgboost",
        {".json": frozenset({"json", "unknown"}), ".ubj": frozenset({"ubjson", "unknown"})},
        "mlops.modelformats.xgboost_runtime",
        ("xgboost", "xgboost-cpu", "onnxmltools"),
    ),
    "lightgbm": ModelFormat(
        "lightgbm",
        {".txt": frozenset({"lightgbm", "unknown"})},
        "mlops.modelformats.lightgbm_runtime",
        ("lightgbm", "onnxmltools"),
    ),
}
# Extension -> format, for uploads (the extension is a claim the content must back).
BY_EXTENSION: dict[str, ModelFormat] = {
    ext: fmt for fmt in FORMATS.values() for ext in fmt.contents
}


def open_model(path: Path, fmt: FormatName) -> tuple[Runtime, dict[str, Any]]:
    """Load and check ``path`` as ``fmt`` with its library's own runtime; its details."""
    module = importlib.import_module(FORMATS[fmt].module)
    return cast(_Opener, module.open_model)(path)
