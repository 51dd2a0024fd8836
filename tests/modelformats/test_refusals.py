"""Files the platform must refuse, each with the exact error class, code and reason."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import joblib
import onnx
import pytest
import skops.io as sio
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops.errors import BadRequest, Invalid, PlatformError
from mlops.modelformats import inspect_model

from .conftest import Data, ModelCase, linear_onnx


class HomeMadeClassifier(LogisticRegression):  # type: ignore[misc]
    """A user-defined class: loading it would mean importing and trusting user code."""


def _refused(path: Path, filename: str, error: type[PlatformError], code: str) -> str:
    with pytest.raises(error) as caught:
        inspect_model(path, filename)
    assert type(caught.value) is error
    assert caught.value.code == code
    return caught.value.message


@pytest.fixture()
def fitted(data: Data) -> LogisticRegression:
    return LogisticRegression().fit(data.x, data.binary)


def test_pickle_is_refused_with_the_risk_and_the_fix(
    fitted: LogisticRegression, tmp_path: Path
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(fitted))
    message = _refused(path, "model.pkl", BadRequest, "unsafe_format")
    assert "arbitrary code" in message
    assert "mlops models convert model.pkl --to onnx" in message


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_is_refused(fitted: LogisticRegression, tmp_path: Path, compress: int) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path, compress=compress)
    assert "arbitrary code" in _refused(path, "model.joblib", BadRequest, "unsafe_format")


@pytest.mark.parametrize("name", ["model.onnx", "model.skops", "model.json", "model.txt", "model"])
def test_pickle_renamed_is_refused_as_pickle(
    fitted: LogisticRegression, tmp_path: Path, name: str
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(pickle.dumps(fitted, protocol=4))
    message = _refused(path, name, BadRequest, "unsafe_format")
    assert "actually a Python pickle" in message


def test_compressed_data_renamed_onnx_is_refused(
    fitted: LogisticRegression, tmp_path: Path
) -> None:
    path = tmp_path / "upload"
    joblib.dump(fitted, path, compress=("gzip", 3))
    assert "joblib" in _refused(path, "model.onnx", BadRequest, "unsafe_format")


def test_pytorch_style_zip_of_pickles_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    for name in ("model.pt", "model.skops"):
        message = _refused(path, name, BadRequest, "unsafe_format")
        assert message.startswith(f"{name} is a zip of pickles"), message
        assert "runs arbitrary code" in message
        assert "mlops models convert" in message


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("model.h5", "unsupported_format"),
        ("model.bin", "unsupported_format"),
        ("model.pth", "unsafe_format"),
    ],
)
def test_other_extensions_are_refused(tmp_path: Path, name: str, code: str) -> None:
    path = tmp_path / "upload"
    path.write_bytes(b"\x00\x01 not a model")
    _refused(path, name, BadRequest, code)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.touch()
    assert "empty" in _refused(path, "empty.onnx", BadRequest, "empty_file")


def test_truncated_onnx_is_invalid(cases: dict[str, ModelCase], tmp_path: Path) -> None:
    data = cases["onnx_zipmap"].path.read_bytes()
    path = tmp_path / "broken.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert "invalid ONNX model" in _refused(path, "broken.onnx", Invalid, "model_invalid")


def test_onnx_with_external_data_is_refused(tmp_path: Path) -> None:
    model = linear_onnx(["a", "b", "c"])
    path = tmp_path / "external.onnx"
    onnx.save_model(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").exists()
    message = _refused(path, "external.onnx", BadRequest, "external_data")
    assert "external data" in message


def test_skops_with_a_user_class_is_refused(data: Data, tmp_path: Path) -> None:
    path = tmp_path / "custom.skops"
    sio.dump(HomeMadeClassifier().fit(data.x, data.binary), path)
    message = _refused(path, "custom.skops", BadRequest, "untrusted_types")
    assert "test_refusals.HomeMadeClassifier" in message


def test_skops_calling_a_system_function_is_refused(data: Data, tmp_path: Path) -> None:
    path = tmp_path / "system.skops"
    pipe = make_pipeline(FunctionTransformer(func=os.system), LogisticRegression())
    sio.dump(pipe, path)
    message = _refused(path, "system.skops", BadRequest, "untrusted_types")
    assert "system" in message


def test_skops_with_an_estimator_outside_the_families_is_refused(
    data: Data, tmp_path: Path
) -> None:
    path = tmp_path / "kmeans.skops"
    sio.dump(KMeans(n_clusters=2, n_init=1, random_state=0).fit(data.x), path)
    message = _refused(path, "kmeans.skops", BadRequest, "untrusted_types")
    assert "sklearn.cluster._kmeans.KMeans" in message


@pytest.mark.parametrize(
    ("source", "claimed"),
    [
        ("onnx_zipmap", "model.skops"),
        ("logreg", "model.onnx"),
        ("lgb_binary", "model.json"),
        ("xgb_binary", "model.ubj"),
        ("xgb_multi", "model.json"),
        ("xgb_reg", "model.txt"),
    ],
)
def test_extension_lying_about_content_is_refused(
    cases: dict[str, ModelCase], tmp_path: Path, source: str, claimed: str
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(cases[source].path.read_bytes())
    message = _refused(path, claimed, BadRequest, "format_mismatch")
    assert "but the content is" in message


def test_json_that_is_not_xgboost_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"weights": [1, 2, 3]}')
    assert "'learner'" in _refused(path, "m.json", Invalid, "model_invalid")
    # Uploads are stored under a temporary name: the content decides JSON or UBJSON.
    stored = tmp_path / "upload-3f2a"
    stored.write_text("{}")
    message = _refused(stored, "m.json", Invalid, "model_invalid")
    assert "JSON without a 'learner' object" in message
    assert "UBJSON" not in message


def test_text_that_is_not_lightgbm_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_text("hello\n")
    assert "header" in _refused(path, "m.txt", Invalid, "model_invalid")
