"""onnxruntime's official builds send telemetry to Microsoft from Linux, keep a device
identifier under ~/.cache/Microsoft and write a session file into $TMPDIR, unless
ORT_DISABLE_TELEMETRY=1 is set before it initialises. The platform sets it when
``mlops`` is imported, and for the upload validator; nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlops.modelformats.demo import build_demo_model
from mlops.registry.sandbox import child_environment

_SERVE_ONE = """
import sys
from pathlib import Path
{first}
import numpy as np
from mlops.modelformats import inspect_model, load_runtime

path = Path(sys.argv[1])
runtime = load_runtime(path, inspect_model(path, path.name))
assert runtime.name == "onnxruntime", runtime.name
print(runtime.predict(np.zeros((2, 5))).values)
# Some of onnxruntime's telemetry may be written in the background: both cases get the
# same time, so that "nothing written" is not a process that exited first.
import os, time
tmp = Path(os.environ["TMPDIR"])
deadline = time.monotonic() + {wait}
while time.monotonic() < deadline and not any(tmp.glob(".ses")):
    time.sleep(0.1)
"""
WAIT_S = 3
# onnxruntime turns its telemetry off by itself where one of these says "CI" (as in our
# CI run): the children run without them, as a production pod does.
CI_MARKERS = {
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
    "ORT_RUNNING_UNIT_TESTS",
}


def _files_left(tmp_path: Path, first: str, model: Path) -> list[str]:
    home, tmp = tmp_path / first.split()[1] / "home", tmp_path / first.split()[1] / "tmp"
    home.mkdir(parents=True)
    tmp.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY" and k not in CI_MARKERS
    }
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_ONE.format(first=first, wait=WAIT_S), str(model)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120 + WAIT_S,
    )
    assert done.returncode == 0, done.stderr
    return sorted(str(p.relative_to(tmp_path)) for p in (home, tmp) for p in p.rglob("*"))


def test_serving_an_onnx_model_writes_nothing_and_calls_nobody(tmp_path: Path) -> None:
    model = build_demo_model(tmp_path / "model")
    # The platform's processes import mlops first: no session file, no device id.
    assert _files_left(tmp_path, "import mlops", model) == []
    # The same with onnxruntime imported before mlops, as a library user might: this
    # onnxruntime does write its files, so the check above can fail.
    left = _files_left(tmp_path, "import onnxruntime", model)
    assert any(name.endswith(".ses") for name in left), left


def test_the_upload_validator_opts_out_whatever_its_parent_has(tmp_path: Path) -> None:
    env = child_environment({"ORT_DISABLE_TELEMETRY": "0", "PATH": "/usr/bin"}, tmp_path)
    assert env["ORT_DISABLE_TELEMETRY"] == "1"
