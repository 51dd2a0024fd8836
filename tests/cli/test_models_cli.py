"""``mlops.client.Client`` and ``mlops models`` against a real ``mlops up``, with
models trained here."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import skops.io as sio
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

from mlops.cli.main import app
from mlops.client import Client, ClientError
from tests.cli.live_server import LiveServer, free_port, running_up
from tests.imports_probe import HEAVY, run_probe

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_up(tmp_path_factory.mktemp("up")) as live:
        yield live


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": "admin", "password": server.admin_password},
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small classifiers: ``a.skops``/``a.pkl`` and ``b.skops`` (other weights)."""
    root = tmp_path_factory.mktemp("models")
    for name, seed in (("a", 0), ("b", 1)):
        x, y = make_classification(n_samples=200, n_features=5, random_state=seed)
        model = LogisticRegression(max_iter=500).fit(x, y)
        sio.dump(model, root / f"{name}.skops")
        with (root / f"{name}.pkl").open("wb") as out:
            pickle.dump(model, out)
    return root


@pytest.fixture
def client(server: LiveServer, token: str) -> Iterator[Client]:
    with Client(server.url, token) as c:
        yield c


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(args: list[str], env: dict[str, str]) -> Result:
    return runner.invoke(app, ["models", *args], env=env)


@pytest.fixture
def cli_env(server: LiveServer, token: str, tmp_path: Path) -> dict[str, str]:
    # A credentials file that does not exist: the caller's own login never leaks in.
    return {
        "MLOPS_URL": server.url,
        "MLOPS_TOKEN": token,
        "MLOPS_CREDENTIALS_FILE": str(tmp_path / "none.json"),
    }


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["create"],
        ["list"],
        ["show"],
        ["push"],
        ["alias"],
        ["rollback"],
        ["download"],
        ["convert"],
        ["deploy"],
    ],
)
def test_every_models_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, ["models", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_client_release_cycle(client: Client, models_dir: Path, tmp_path: Path) -> None:
    created = client.create_model("churn", description="Churn", tags={"team": "growth"})
    assert created["latest_version"] is None

    calls: list[tuple[int, int]] = []
    size = (models_dir / "a.skops").stat().st_size
    v1 = client.push(
        models_dir / "a.skops",
        "churn",
        alias="production",
        metadata={"description": "first", "metrics": {"auc": 0.9}},
        create=False,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert (v1["version"], v1["format"], v1["aliases"]) == (1, "skops", ["production"])
    assert v1["metrics"] == {"auc": 0.9}
    assert v1["signature"]["n_features"] == 5
    assert v1["sha256"] == _sha256(models_dir / "a.skops")
    assert calls and calls[-1] == (size, size)
    assert all(total == size for _, total in calls)

    v2 = client.push(models_dir / "b.skops", "churn", create=False)
    assert (v2["version"], v2["aliases"]) == (2, [])
    moved = client.set_alias("churn", "production", 2)
    assert (moved["version"], moved["previous_version"]) == (2, 1)
    back = client.rollback("churn", "production")
    assert (back["version"], back["previous_version"]) == (1, 2)
    history = client.alias_history("churn", "production")
    assert history["current_version"] == 1
    assert len(history["events"]) == 3

    model = client.get_model("churn")
    assert model["latest_version"] == 2
    assert [(a["name"], a["version"]) for a in model["aliases"]] == [("production", 1)]
    assert [v["version"] for v in client.list_versions("churn")["items"]] == [1, 2]
    assert client.get_version("churn", 2)["sha256"] == _sha256(models_dir / "b.skops")
    listed = client.list_models(prefix="chu", tag="team:growth")
    assert [m["name"] for m in listed["items"]] == ["churn"]
    assert listed["total"] == 1

    progress: list[tuple[int, int]] = []
    dest = client.download(
        "churn", 2, tmp_path / "b.skops", progress=lambda d, t: progress.append((d, t))
    )
    assert dest.read_bytes() == (models_dir / "b.skops").read_bytes()
    final = (models_dir / "b.skops").stat().st_size
    assert progress[-1] == (final, final)
    assert [p.name for p in tmp_path.iterdir()] == ["b.skops"]  # no partial file left

    client.set_alias("churn", "staging", 2)
    client.delete_alias("churn", "staging")
    with pytest.raises(ClientError) as missing_alias:
        client.rollback("churn", "staging")
    assert (missing_alias.value.status_code, missing_alias.value.code) == (404, "alias_not_found")


def test_client_push_creates_the_model_and_the_demo_is_there(
    client: Client, models_dir: Path
) -> None:
    version = client.push(models_dir / "a.skops", "fresh", metadata={"run_id": "r1"})
    assert version["version"] == 1
    assert version["lineage"]["run_id"] == "r1"
    assert client.get_model("fresh")["latest_version"] == 1

    demo = client.get_model("demo")
    assert [(a["name"], a["version"]) for a in demo["aliases"]] == [("production", 1)]
    assert client.get_default_model() == {"name": "demo", "source": "api"}
    assert client.set_default_model("fresh") == {"name": "fresh", "source": "api"}
    client.set_default_model("demo")


def test_client_errors(client: Client, server: LiveServer, models_dir: Path) -> None:
    with pytest.raises(ClientError) as unknown:
        client.get_model("nope")
    assert (unknown.value.status_code, unknown.value.code) == (404, "model_not_found")
    assert "'nope' does not exist" in str(unknown.value)

    with pytest.raises(ClientError) as pickled:
        client.push(models_dir / "a.pkl", "pickled")
    assert (pickled.value.status_code, pickled.value.code) == (400, "unsafe_format")
    assert "mlops models convert" in pickled.value.message

    with Client(server.url, "not-a-token") as anonymous, pytest.raises(ClientError) as denied:
        anonymous.list_models()
    assert denied.value.status_code == 401

    with pytest.raises(ClientError) as wrong:
        Client.login(server.url, "admin", "wrong-password")
    assert wrong.value.status_code == 401

    with Client(f"http://127.0.0.1:{free_port()}", "t", timeout=2) as nowhere:
        with pytest.raises(ClientError) as unreachable:
            nowhere.get_model("demo")
    assert (unreachable.value.status_code, unreachable.value.code) == (0, "connection_error")


def test_client_login_and_from_login(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client.login(server.url, "admin", server.admin_password) as logged_in:
        assert logged_in.get_model("demo")["name"] == "demo"

    creds = tmp_path / "credentials.json"
    monkeypatch.setenv("MLOPS_CREDENTIALS_FILE", str(creds))
    with pytest.raises(ClientError, match="mlops login --url URL"):
        Client.from_login()
    result = runner.invoke(
        app,
        ["login", "--url", server.url, "--username", "admin", "--password", server.admin_password],
    )
    assert result.exit_code == 0, result.output
    with Client.from_login() as kept:
        assert kept.list_models(prefix="demo")["total"] == 1

    stale = json.loads(creds.read_text()) | {"expires_at": time.time() - 1}
    creds.write_text(json.dumps(stale))
    with pytest.raises(ClientError, match="expired"):
        Client.from_login()


def test_download_refuses_a_checksum_mismatch(tmp_path: Path) -> None:
    def lying_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"model bytes", headers={"X-Artifact-SHA256": "0" * 64})

    dest = tmp_path / "model.onnx"
    with Client("http://mlops.test", "t", transport=httpx.MockTransport(lying_server)) as c:
        with pytest.raises(ClientError) as mismatch:
            c.download("m", 1, dest)
    assert mismatch.value.code == "checksum_mismatch"
    assert list(tmp_path.iterdir()) == []


def test_push_streams_the_file_in_chunks(tmp_path: Path) -> None:
    model = tmp_path / "big.onnx"
    model.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    seen: dict[str, str] = {}

    def registry(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        body = request.read()
        assert model.read_bytes() in body
        return httpx.Response(201, json={"version": 1})

    steps: list[tuple[int, int]] = []
    with Client("http://mlops.test", "t", transport=httpx.MockTransport(registry)) as c:
        c.push(model, "m", create=False, progress=lambda d, t: steps.append((d, t)))
    size = model.stat().st_size
    assert seen["content-type"].startswith("multipart/form-data")
    assert int(seen["content-length"]) > size  # sized up front, not read into memory
    done = [d for d, _ in steps]
    assert len(done) > 1
    assert max(b - a for a, b in zip([0, *done], done, strict=False)) <= 1 << 16
    assert steps[-1] == (size, size)


def test_error_without_a_platform_body_falls_back_to_the_status() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with Client("http://mlops.test", "t", transport=httpx.MockTransport(proxy)) as c:
        with pytest.raises(ClientError) as failed:
            c.get_model("m")
    assert (failed.value.status_code, failed.value.code) == (502, "http_error")
    assert "Bad Gateway" in failed.value.message


def test_cli_release_cycle(cli_env: dict[str, str], models_dir: Path, tmp_path: Path) -> None:
    created = _cli(["create", "fraud", "--description", "Fraud", "--tag", "team=risk"], cli_env)
    assert created.exit_code == 0, created.output
    again = _cli(["create", "fraud"], cli_env)
    assert again.exit_code == 1
    assert "already exists" in again.output

    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"metrics": {"f1": 0.8}, "params": {"C": 1.0}}))
    pushed = _cli(
        [
            "push",
            str(models_dir / "a.skops"),
            "--name",
            "fraud",
            "--alias",
            "production",
            "--metadata",
            str(meta),
            "--description",
            "first",
        ],
        cli_env,
    )
    assert pushed.exit_code == 0, pushed.output
    assert "fraud v1" in pushed.output
    assert _sha256(models_dir / "a.skops") in pushed.output
    assert "skops" in pushed.output
    assert "5 float" in pushed.output  # the signature summary
    second = _cli(["push", str(models_dir / "b.skops"), "--name", "fraud"], cli_env)
    assert second.exit_code == 0, second.output
    assert "fraud v2" in second.output

    listed = _cli(["list", "--tag", "team:risk"], cli_env)
    assert listed.exit_code == 0, listed.output
    assert re.search(r"fraud\s.*v2\s.*production→v1\s.*team=risk", listed.output), listed.output
    assert "demo" not in listed.output
    everything = _cli(["list"], cli_env)
    assert re.search(r"demo\s.*v1\s.*production→v1", everything.output), everything.output

    shown = _cli(["show", "fraud"], cli_env)
    assert shown.exit_code == 0, shown.output
    assert "aliases: production→v1" in shown.output
    assert re.search(r"v1\s.*skops\s.*production", shown.output), shown.output
    assert re.search(r"v2\s.*skops", shown.output), shown.output

    moved = _cli(["alias", "fraud", "production", "2"], cli_env)
    assert moved.exit_code == 0, moved.output
    assert "fraud@production → v2 (was v1)" in moved.output
    rolled = _cli(["rollback", "fraud", "production"], cli_env)
    assert rolled.exit_code == 0, rolled.output
    assert "fraud@production → v1 (was v2)" in rolled.output
    assert _cli(["alias", "fraud", "canary", "2"], cli_env).exit_code == 0
    removed = _cli(["alias", "fraud", "canary", "--delete"], cli_env)
    assert removed.exit_code == 0, removed.output
    neither = _cli(["alias", "fraud", "canary"], cli_env)
    assert neither.exit_code == 1

    out = tmp_path / "downloaded.skops"
    fetched = _cli(["download", "fraud", "2", "-o", str(out)], cli_env)
    assert fetched.exit_code == 0, fetched.output
    assert "verified" in fetched.output
    assert out.read_bytes() == (models_dir / "b.skops").read_bytes()
    into_dir = _cli(["download", "fraud", "1", "-o", str(tmp_path)], cli_env)
    assert into_dir.exit_code == 0, into_dir.output
    assert (tmp_path / "fraud-v1-a.skops").read_bytes() == (models_dir / "a.skops").read_bytes()


def test_cli_deploys_a_canary_with_a_guard_and_a_shadow(
    cli_env: dict[str, str], client: Client, models_dir: Path
) -> None:
    for file in ("a.skops", "b.skops"):
        assert _cli(["push", str(models_dir / file), "--name", "ship"], cli_env).exit_code == 0
    assert _cli(["alias", "ship", "production", "1"], cli_env).exit_code == 0

    canary = _cli(["deploy", "ship", "--canary", "2", "--percent", "25", "--guard"], cli_env)
    assert canary.exit_code == 0, canary.output
    assert "ship: production→v1; canary v2 25%; guard (errors <= 0.01, p95 <= 50 ms per row" in (
        canary.output
    )
    policy = client.get_deployment("ship")["policy"]
    assert policy["canary"] == {"version": 2, "percent": 25.0}
    assert policy["guard"]["min_requests"] == 100

    shadow = _cli(["deploy", "ship", "--shadow", "2"], cli_env)  # replaces the canary
    assert shadow.exit_code == 0, shadow.output
    assert client.get_deployment("ship")["policy"]["canary"] is None
    shown = _cli(["show", "ship"], cli_env)
    assert "deployment: production→v1; shadow v2" in shown.output, shown.output
    # The table is cut to the test terminal's 80 columns.
    assert re.search(r"v1\s.*skops\s.*onnxrun", shown.output), shown.output

    same = _cli(["deploy", "ship", "--canary", "1"], cli_env)
    assert same.exit_code == 1
    assert "a canary needs another version" in same.output
    lone_guard = _cli(["deploy", "ship", "--guard"], cli_env)
    assert lone_guard.exit_code == 1
    assert "--guard watches a canary" in lone_guard.output
    plain = _cli(["deploy", "ship"], cli_env)
    assert plain.exit_code == 0, plain.output
    assert plain.output.strip() == "ship: production→v1"


def test_cli_converts_pickles_and_the_server_refuses_them(
    cli_env: dict[str, str], models_dir: Path, tmp_path: Path
) -> None:
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes((models_dir / "a.pkl").read_bytes())

    refused = _cli(["push", str(pkl), "--name", "converted"], cli_env)
    assert refused.exit_code == 1
    assert "mlops models convert" in refused.output

    for fmt in ("skops", "onnx"):
        converted = _cli(["convert", str(pkl), "--to", fmt], cli_env)
        assert converted.exit_code == 0, converted.output
        assert "runs any code" in converted.output  # the warning about pickles
        dest = tmp_path / f"model.{fmt}"
        assert dest.exists()
        pushed = _cli(["push", str(dest), "--name", "converted"], cli_env)
        assert pushed.exit_code == 0, pushed.output
        assert fmt in pushed.output

    exists = _cli(["convert", str(pkl), "--to", "onnx"], cli_env)
    assert exists.exit_code == 1
    assert "--force" in exists.output
    other = tmp_path / "out.onnx"
    named = _cli(
        ["convert", str(pkl), "--to", "onnx", "-o", str(other), "--n-features", "5"], cli_env
    )
    assert named.exit_code == 0, named.output
    assert other.exists()

    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle at all")
    broken = _cli(["convert", str(garbage), "--to", "onnx"], cli_env)
    assert broken.exit_code == 1
    assert "cannot convert" in broken.output
    assert not (tmp_path / "garbage.onnx").exists()


def test_cli_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    unknown = _cli(["show", "nope"], cli_env)
    assert unknown.exit_code == 1
    assert "model 'nope' does not exist" in unknown.output
    assert "404 model_not_found" in unknown.output
    no_version = _cli(["download", "demo", "9", "-o", str(tmp_path / "x")], cli_env)
    assert no_version.exit_code == 1
    assert "has no version 9" in no_version.output

    nothing = {"MLOPS_CREDENTIALS_FILE": str(tmp_path / "missing.json")}
    for args in (["list"], ["show", "demo"], ["rollback", "demo", "production"]):
        result = _cli(args, nothing)
        assert result.exit_code == 1
        assert "run `mlops login --url URL` first" in result.output

    only_url = _cli(["list", "--url", cli_env["MLOPS_URL"]], nothing)
    assert only_url.exit_code == 1
    assert "mlops login --url URL" in only_url.output


def test_cli_uses_the_kept_login(server: LiveServer, tmp_path: Path) -> None:
    env = {"MLOPS_CREDENTIALS_FILE": str(tmp_path / "credentials.json")}
    logged_in = runner.invoke(
        app,
        ["login", "--url", server.url, "--username", "admin", "--password", server.admin_password],
        env=env,
    )
    assert logged_in.exit_code == 0, logged_in.output
    listed = _cli(["list", "--prefix", "demo"], env)
    assert listed.exit_code == 0, listed.output
    assert re.search(r"demo\s.*v1\s.*production→v1", listed.output), listed.output

    # The kept token is never sent to another server.
    elsewhere = _cli(["list", "--url", f"http://127.0.0.1:{free_port()}"], env)
    assert elsewhere.exit_code == 1
    assert "mlops login --url URL" in elsewhere.output


def test_client_commands_import_no_server_or_model_library(
    server: LiveServer, token: str, tmp_path: Path
) -> None:
    """`mlops models list`, `show` and `whoami` start in a fraction of a second: they
    import the HTTP client, never the server, the database or a model library."""
    credentials = tmp_path / "credentials.json"
    credentials.write_text(
        json.dumps({"url": server.url, "username": "admin", "access_token": token})
    )
    env = {"MLOPS_CREDENTIALS_FILE": str(credentials)}
    for command in (["models", "list"], ["models", "show", "demo"], ["whoami"]):
        loaded, report = run_probe(
            f"from mlops.cli.main import app\napp({command!r}, prog_name='mlops')", env=env
        )
        assert report["exit"] == 0, (command, report["exit"])
        assert "httpx" in loaded  # it did talk to the server
        assert not loaded & HEAVY, (command, sorted(loaded & HEAVY))
