"""Model libraries load only for models of their format, and a restart serves a
verified ONNX conversion from the local cache without the model's own library."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mlops.modelformats import ModelInfo, inspect_model, load_runtime
from mlops.modelformats.formats import FORMATS
from mlops.modelformats.onnx_cache import ConversionCache
from tests.imports_probe import MODEL_LIBRARIES, SERVER_LIBRARIES, run_probe

from .conftest import ModelCase

SECRET = "s" * 48

_LOAD = """
from pathlib import Path
import numpy as np
from mlops.modelformats import ModelInfo, load_runtime
from mlops.modelformats.onnx_cache import ConversionCache
info = ModelInfo.model_validate_json(Path({info!r}).read_text())
cache = ConversionCache(Path({cache!r}), {secret!r}) if {cache!r} else None
runtime = load_runtime(Path({path!r}), info, conversions=cache)
x = np.array({rows!r}, dtype=np.float64)
_exit = {{"runtime": runtime.name, "values": runtime.predict(x).values.tolist()}}
"""


def _load_in_fresh_process(
    path: Path, info: ModelInfo, tmp_path: Path, rows: list[list[float]], cache: Path | None
) -> tuple[set[str], dict[str, object]]:
    info_file = tmp_path / "info.json"
    info_file.write_text(info.model_dump_json())
    code = _LOAD.format(
        info=str(info_file),
        cache=str(cache) if cache else "",
        secret=SECRET,
        path=str(path),
        rows=rows,
    )
    loaded, report = run_probe(code)
    result = report["exit"]
    assert isinstance(result, dict), report
    return loaded, result


def test_an_onnx_model_loads_without_other_model_libraries(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    case = cases["onnx_zipmap"]
    info = inspect_model(case.path, case.path.name)
    rows = case.x[:3].tolist()
    loaded, result = _load_in_fresh_process(case.path, info, tmp_path, rows, cache=None)
    assert result["runtime"] == "onnxruntime"
    assert result["values"] == case.expected.values[:3].tolist()
    assert "onnxruntime" in loaded  # the probe really loaded a model
    assert not loaded & (MODEL_LIBRARIES | SERVER_LIBRARIES), loaded


@pytest.mark.parametrize("name", ["logreg", "xgb_binary", "lgb_binary"])
def test_a_restart_serves_the_cached_conversion_without_the_native_library(
    cases: dict[str, ModelCase], tmp_path: Path, name: str
) -> None:
    case = cases[name]
    info = inspect_model(case.path, case.path.name)
    cache_dir = tmp_path / "onnx"
    first = load_runtime(case.path, info, conversions=ConversionCache(cache_dir, SECRET))
    assert first.name == "onnxruntime"
    assert len(list(cache_dir.glob("*.onnx"))) == 1

    rows = case.x[:4].tolist()
    loaded, result = _load_in_fresh_process(case.path, info, tmp_path, rows, cache=cache_dir)
    assert result["runtime"] == "onnxruntime"
    np.testing.assert_array_equal(result["values"], case.expected.values[:4])
    assert not loaded & MODEL_LIBRARIES, loaded


def test_a_refused_conversion_is_remembered_and_served_natively(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    case = cases["histgb"]  # no equivalent ONNX graph today (see test_runtime)
    info = inspect_model(case.path, case.path.name)
    cache = ConversionCache(tmp_path / "onnx", SECRET)
    first = load_runtime(case.path, info, conversions=cache)
    assert first.name == "sklearn" and first.fallback_reason
    again = load_runtime(case.path, info, conversions=cache)
    assert again.name == "sklearn"
    assert again.fallback_reason == first.fallback_reason
    assert [p.suffix for p in (tmp_path / "onnx").iterdir()] == [".refused"]


def test_another_file_misses_the_cache(cases: dict[str, ModelCase], tmp_path: Path) -> None:
    case = cases["logreg"]
    info = inspect_model(case.path, case.path.name)
    cache = ConversionCache(tmp_path / "onnx", SECRET)
    load_runtime(case.path, info, conversions=cache)
    skops = FORMATS["skops"]
    assert cache.get(cache.key(case.path, skops)) is not None
    # One byte more at the end: another file, another key (a tampered artifact or a new
    # version is converted and verified again).
    other = tmp_path / "other.skops"
    shutil.copy(case.path, other)
    with other.open("ab") as fh:
        fh.write(b"\0")
    assert cache.key(other, skops) != cache.key(case.path, skops)
    assert cache.get(cache.key(other, skops)) is None


def test_an_entry_not_signed_with_the_secret_is_never_served(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    """Whoever can write the cache directory cannot change what a version predicts: a
    graph planted under the right key, signed with another secret, is thrown away and
    the model converted and verified again."""
    case = cases["logreg"]
    info = inspect_model(case.path, case.path.name)
    directory = tmp_path / "onnx"
    key = ConversionCache(directory, SECRET).key(case.path, FORMATS["skops"])
    planted = cases["onnx_zipmap"].path.read_bytes()  # another model (3 classes)
    ConversionCache(directory, "another secret, the attacker's").put_onnx(key, planted)

    runtime = load_runtime(case.path, info, conversions=ConversionCache(directory, SECRET))
    assert runtime.name == "onnxruntime"
    x = case.x[:20].astype(np.float32)
    np.testing.assert_array_equal(runtime.predict(x).values, case.expected.values[:20])
    entry = ConversionCache(directory, SECRET).get(key)
    assert entry is not None and entry.onnx is not None and entry.onnx != planted


def test_a_rotation_keeps_the_cache_and_signs_it_again(
    cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    """After MLOPS_SECRET_KEY moves to MLOPS_SECRET_KEY_PREVIOUS, an entry of the old key
    is served (nothing is converted again) and signed with the new key, so it still
    verifies once the old key is dropped. Without the old key among the previous ones
    it is refused."""
    case = cases["logreg"]
    info = inspect_model(case.path, case.path.name)
    directory = tmp_path / "onnx"
    old_key, new_key = SECRET, "n" * 48
    load_runtime(case.path, info, conversions=ConversionCache(directory, old_key))
    key = ConversionCache(directory, old_key).key(case.path, FORMATS["skops"])
    graph = ConversionCache(directory, old_key).get(key)
    assert graph is not None and graph.onnx is not None
    entry = directory / f"{key}.onnx"
    signed_by_old = entry.read_bytes()

    rotated = ConversionCache(directory, new_key, previous=[old_key])
    served = rotated.get(key)
    assert served is not None and served.onnx == graph.onnx
    assert entry.read_bytes() != signed_by_old  # signed again, same graph
    after_old_key_dropped = ConversionCache(directory, new_key).get(key)
    assert after_old_key_dropped is not None and after_old_key_dropped.onnx == graph.onnx

    # An entry under a key that is neither current nor previous: refused and deleted.
    entry.write_bytes(signed_by_old)
    assert ConversionCache(directory, new_key, previous=["o" * 48]).get(key) is None
    assert not entry.exists()
