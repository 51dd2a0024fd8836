"""``.skops`` files: scikit-learn models loaded without unpickling.

A file is loaded only if every type skops does not trust is on the platform's
allow-list and every scikit-learn type in it belongs to a supported family;
after loading, ``sklearn_integrity`` checks the arrays compiled code will read.
"""

from __future__ import annotations

import json
import lzma
import zipfile
import zlib
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.base import is_classifier, is_regressor

from mlops.errors import BadRequest, Invalid

from .allowlist import not_allowed, unsupported_sklearn_types
from .library_errors import client_message
from .signature import Signature, to_python_labels
from .sklearn_integrity import check_estimator
from .skops_archive import check_archive

# The schema is plain JSON; a larger one is a zip bomb, not a model.
MAX_SCHEMA_BYTES = 64 * 1024 * 1024
_STRUCTURE_ERRORS = (AttributeError, TypeError, ValueError, KeyError, IndexError)
# What reading a corrupt or unusual zip member can raise.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    KeyError,
    ValueError,
    OSError,
    EOFError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)


def load_skops(path: Path) -> Any:
    """Load a fitted scikit-learn estimator from ``path`` under the allow-list.

    Raises ``BadRequest`` (code ``untrusted_types``) naming every type that is
    not allowed, ``Invalid`` (``model_too_large``) if it would unpack to more
    memory than its size allows, and ``Invalid`` (``model_invalid``) if it is broken.
    """
    # Before skops reads anything: it unpacks every member even to list types.
    schema = _read_schema(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises many types for malformed files
        message = client_message(exc, library="skops")
        raise _invalid(f"skops could not read the file: {message}") from exc
    refused = not_allowed(untrusted)
    if refused:
        raise BadRequest(
            "the .skops file contains types the platform does not trust: "
            + ", ".join(refused)
            + ". Only scikit-learn models, numpy arrays and plain Python values are accepted.",
            code="untrusted_types",
            details={"types": refused},
        )
    unsupported = unsupported_sklearn_types(_type_names(schema))
    if unsupported:
        raise BadRequest(
            "the .skops file contains scikit-learn types outside the supported model "
            "families: " + ", ".join(unsupported),
            code="untrusted_types",
            details={"types": unsupported},
        )
    try:
        model = sio.load(path, trusted=untrusted)
    except Exception as exc:
        message = client_message(exc, library="skops")
        raise _invalid(f"skops could not load the model: {message}") from exc
    if not callable(getattr(model, "predict", None)):
        raise _invalid(f"{type(model).__name__} has no predict method")
    try:
        check_estimator(model)
    except _STRUCTURE_ERRORS as exc:
        raise _invalid(f"the model is missing or has malformed fitted state: {exc}") from exc
    return model


def sklearn_signature(model: Any) -> Signature:
    """The signature of a fitted estimator; ``Invalid`` for unsupported outputs."""
    names = getattr(model, "feature_names_in_", None)
    classes = None
    if is_classifier(model):
        raw = getattr(model, "classes_", None)
        if raw is None or isinstance(raw, list) or getattr(raw, "ndim", 1) != 1:
            raise _invalid("multi-output classifiers are not supported")
        classes = to_python_labels(raw)
    elif not is_regressor(model):
        raise _invalid(f"{type(model).__name__} is neither a classifier nor a regressor")
    return Signature(
        n_features=int(model.n_features_in_),
        feature_names=[str(n) for n in names] if names is not None else None,
        input_dtype="float64",
        output_kind="class_labels" if classes is not None else "regression",
        classes=classes,
        has_probabilities=classes is not None and hasattr(model, "predict_proba"),
    )


def sklearn_details(model: Any) -> dict[str, Any]:
    import sklearn

    details: dict[str, Any] = {
        "library": "sklearn",
        "estimator": type(model).__name__,
        "sklearn_version": sklearn.__version__,
    }
    steps = getattr(model, "steps", None)
    if steps is not None:
        details["steps"] = [type(step).__name__ for _, step in steps]
    return details


def _read_schema(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path.stat().st_size)
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise _invalid("schema.json is too large")
            return json.loads(archive.read(info))
    except _ZIP_ERRORS as exc:
        message = client_message(exc, library="zipfile")
        raise _invalid(f"not a valid .skops archive: {message}") from exc


def _type_names(node: Any) -> set[str]:
    """Every ``module.Class`` named anywhere in a skops schema."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, cls = item.get("__module__"), item.get("__class__")
            if isinstance(module, str) and isinstance(cls, str):
                found.add(f"{module}.{cls}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _invalid(reason: str) -> Invalid:
    return Invalid(f"invalid .skops model: {reason}", code="model_invalid")
