"""scripts/bluegreen.py against a stand-in kubectl (no cluster runs here) that keeps
our rendered VirtualServices and applies the guide's JSON patch to them: the gate
refuses a slot that is not rolled out or not ready and then changes nothing; a
switch and a rollback flip http[0]'s subset of the API and app hosts only."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.infrastructure.bundle import ROOT, find, rendered

FAKE_KUBECTL = textwrap.dedent(
    """\
    #!{python}
    # A stand-in for kubectl: objects in a JSON file; records each call.
    import json, sys
    state_path = {state!r}
    state = json.load(open(state_path))
    args = sys.argv[1:]
    assert args[:2] == ["-n", "mlops-production"], args
    args = args[2:]
    state["calls"].append(args)
    def save():
        json.dump(state, open(state_path, "w"))
    if args[0] == "get":
        kind, name = args[1], args[2]
        obj = state[kind].get(name)
        if obj is None:
            save(); sys.stderr.write("NotFound"); sys.exit(1)
        print(json.dumps(obj))
    elif args[0] == "exec":
        print(state["ready"][args[1].split("/")[1]])
    elif args[0] == "patch":
        (patch,) = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
        obj = state["virtualservice"][args[2]]
        for op in json.loads(patch):
            assert op["op"] == "replace"
            *parents, last = [p for p in op["path"].split("/") if p]
            target = obj
            for p in parents:
                target = target[int(p)] if isinstance(target, list) else target[p]
            assert last in target, op["path"]
            target[last] = op["value"]
    save()
    """
)


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bluegreen", ROOT / "scripts" / "bluegreen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deployment(name: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 2},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 2,
            "updatedReplicas": ready,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    docs = rendered()
    state = {
        "calls": [],
        "virtualservice": {
            name: find(docs, "VirtualService", name)
            for name in ("mlops-api-vs", "mlops-app-vs", "mlops-api-staging-vs")
        },
        "deployment": {
            "api-server": _deployment("api-server", 3, 3),
            "api-server-blue": _deployment("api-server-blue", 3, 3),
        },
        "ready": {"api-server": "200", "api-server-blue": "200"},
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    fake = tmp_path / "kubectl"
    fake.write_text(FAKE_KUBECTL.format(python=sys.executable, state=str(path)))
    fake.chmod(0o755)
    monkeypatch.setenv("KUBECTL", str(fake))
    return path


def _state(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _subsets(path: Path) -> dict[str, str]:
    return {
        name: vs["spec"]["http"][0]["route"][0]["destination"]["subset"]
        for name, vs in _state(path)["virtualservice"].items()
    }


def test_switch_and_rollback_flip_the_guides_path(cluster: Path) -> None:
    script = _load_script()
    assert script.main(["switch", "blue"]) == 0
    assert _subsets(cluster) == {
        "mlops-api-vs": "blue",
        "mlops-app-vs": "blue",
        "mlops-api-staging-vs": "blue",
    }
    # Everything else in the routes is as shipped.
    before = find(rendered(), "VirtualService", "mlops-api-vs")
    after = _state(cluster)["virtualservice"]["mlops-api-vs"]
    after["spec"]["http"][0]["route"][0]["destination"]["subset"] = "green"
    assert after == before
    assert script.main(["rollback"]) == 0
    assert _subsets(cluster)["mlops-api-vs"] == "green"
    assert _subsets(cluster)["mlops-app-vs"] == "green"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["deployment"]["api-server-blue"]["status"].update(readyReplicas=1), "1 of 3"),
        (lambda s: s["ready"].update({"api-server-blue": "503"}), "/ready answered"),
        (lambda s: s["deployment"].pop("api-server-blue"), "NotFound"),
        (
            lambda s: s["deployment"]["api-server-blue"]["metadata"].update(generation=3),
            "has not seen",
        ),
    ],
)
def test_the_gate_refuses_an_unfit_slot_and_patches_nothing(
    cluster: Path, change: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _state(cluster)
    change(state)
    cluster.write_text(json.dumps(state))
    assert _load_script().main(["switch", "blue"]) == 1
    assert message in capsys.readouterr().err
    assert _subsets(cluster)["mlops-api-vs"] == "green"
    assert not [c for c in _state(cluster)["calls"] if c[0] == "patch"]


def test_status_and_no_op(cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _load_script()
    assert script.main(["status"]) == 0
    assert capsys.readouterr().out.strip() == "green"
    assert script.main(["switch", "green"]) == 0
    assert not [c for c in _state(cluster)["calls"] if c[0] in ("patch", "exec")]
