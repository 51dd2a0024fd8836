"""A model library's error reaches the client as its first line, without stack
traces, server paths or addresses; the full text goes to the log."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from mlops.errors import Invalid
from mlops.modelformats import inspect_model
from mlops.modelformats.library_errors import first_line

from .conftest import ModelCase

ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _refusal(path: Path, filename: str, caplog: pytest.LogCaptureFixture) -> tuple[str, str]:
    """The client's message, and the full library text that was logged."""
    with caplog.at_level(logging.INFO, logger="mlops.modelformats"):
        with pytest.raises(Invalid) as caught:
            inspect_model(path, filename)
    assert caught.value.code == "model_invalid"
    logged = [r for r in caplog.records if r.name == "mlops.modelformats"]
    assert logged, "the library's full error was not logged"
    return caught.value.message, str(logged[-1].__dict__["library_error"])


def _assert_clean(message: str) -> None:
    assert "Stack trace" not in message
    assert "[bt]" not in message
    assert "/" not in message  # no server or build paths
    assert not ADDRESS.search(message)
    assert "\n" not in message


def test_xgboost_json_error_is_one_clean_line(
    cases: dict[str, ModelCase], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = json.loads(cases["xgb_binary"].path.read_text())
    doc["learner"]["objective"]["name"] = "no:such"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    message, logged = _refusal(path, "m.json", caplog)
    _assert_clean(message)
    assert "Unknown objective function" in message
    assert "Stack trace" in logged  # what the client used to get


def test_xgboost_ubj_error_is_one_clean_line(
    cases: dict[str, ModelCase], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = cases["xgb_multi"].path.read_bytes()
    path = tmp_path / "m.ubj"
    path.write_bytes(data[: len(data) // 2])
    message, logged = _refusal(path, "m.ubj", caplog)
    _assert_clean(message)
    assert re.search(r"XGBoost could not load it: .+ around character position: \d+$", message)
    assert "Stack trace" in logged


def test_lightgbm_error_is_one_clean_line(
    cases: dict[str, ModelCase], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One leaf weight too many: the platform's own checks pass, LightGBM's CHECK fails.
    text = cases["lgb_binary"].path.read_text()
    lines = [line + " 1" if line.startswith("leaf_weight=") else line for line in text.split("\n")]
    path = tmp_path / "m.txt"
    path.write_text("\n".join(lines))
    message, logged = _refusal(path, "m.txt", caplog)
    _assert_clean(message)
    assert "LightGBM could not load it: Check failed" in message
    assert re.search(r" at /\S+, line \d+", logged)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[20:30:46] /workspace/src/common/json.cc:409: Unknown construct\n"
            "Stack trace:\n  [bt] (0) /usr/lib/libxgboost.so(+0x11031e) [0x7f58eb11031e]\n",
            "Unknown construct",
        ),
        (
            "Check failed: (a) == (b) at /__w/LightGBM/include/common.h, line 1173 .\n",
            "Check failed: (a) == (b)",
        ),
        (
            "\n\nopening /srv/data/tmp/upload-1 failed at 0xdeadbeef",
            "opening <path> failed at <address>",
        ),
        ("Traceback (most recent call last):\n  File x", ""),
    ],
)
def test_first_line_keeps_the_reason_only(text: str, expected: str) -> None:
    assert first_line(text) == expected
