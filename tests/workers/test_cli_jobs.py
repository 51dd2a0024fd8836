"""``mlops jobs`` and the ``Client`` job methods against a real ``mlops up``, whose own
worker runs the jobs (nothing else is started)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlops.cli.main import app
from mlops.client import Client, ClientError
from tests.cli.live_server import LiveServer, running_up
from tests.workers.helpers import dataset, decode, encode

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_up(tmp_path_factory.mktemp("up")) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    with Client.login(server.url, "admin", server.admin_password) as logged_in:
        yield logged_in


def test_jobs_from_the_command_line(server: LiveServer, client: Client, tmp_path: Path) -> None:
    auth = ["--url", server.url, "--token", client._http.headers["Authorization"][7:]]
    ids, x = dataset(180, seed=12)
    data = tmp_path / "rows.csv"
    data.write_bytes(encode(ids, x, "csv"))
    submitted = runner.invoke(
        app, ["jobs", "submit", "demo", str(data), "--probabilities", "--shard-rows", "50", *auth]
    )
    assert submitted.exit_code == 0, submitted.output
    assert "job 1 succeeded: 180 rows" in submitted.output
    listed = runner.invoke(app, ["jobs", "list", *auth])
    assert listed.exit_code == 0 and "succeeded" in listed.output and "180/180" in listed.output
    shown = runner.invoke(app, ["jobs", "show", "1", *auth])
    assert shown.exit_code == 0 and "shards_total: 4" in shown.output
    out = tmp_path / "scored.csv"
    downloaded = runner.invoke(app, ["jobs", "download", "1", str(out), *auth])
    assert downloaded.exit_code == 0, downloaded.output
    table = decode(out.read_bytes(), "csv")
    served = client.predict(x.tolist(), name="demo", return_probabilities=True)
    assert table.column("id").to_pylist() == ids
    assert table.column("prediction").to_pylist() == served["predictions"]
    np.testing.assert_allclose(
        table.column("probability_1").to_numpy(), np.array(served["probabilities"])[:, 1], rtol=1e-6
    )
    again = runner.invoke(app, ["jobs", "cancel", "1", *auth])
    assert again.exit_code == 1 and "already succeeded" in again.output
    missing = runner.invoke(app, ["jobs", "submit", "demo", "datasets/none/x.csv", *auth])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    # A local file that is not there, or a folder: said as such, nothing is queued.
    for local, what in ((tmp_path / "typo.csv", "does not exist"), (tmp_path, "is a directory")):
        refused = runner.invoke(app, ["jobs", "submit", "demo", str(local), *auth])
        assert refused.exit_code == 1, refused.output
        assert f"{local} {what}: give a local CSV" in " ".join(refused.output.split())
    assert client.list_jobs()["total"] == 1


def test_client_job_methods(client: Client, tmp_path: Path) -> None:
    ids, x = dataset(40, seed=13)
    data = tmp_path / "rows.parquet"
    data.write_bytes(encode(ids, x, "parquet"))
    uploaded = client.upload_dataset(data)
    assert uploaded["format"] == "parquet" and uploaded["size"] == data.stat().st_size
    job = client.submit_job("demo", uploaded["uri"], version=1, shard_rows=20)
    seen: list[str] = []
    done = client.wait_for_job(
        job["id"], poll=0.2, timeout=120, on_update=lambda j: seen.append(j["status"])
    )
    assert done["status"] == "succeeded" and done["shards_total"] == 2 and seen[-1] == "succeeded"
    assert client.list_jobs(status="succeeded", model="demo")["total"] >= 1
    path = client.download_job_output(job["id"], tmp_path / "out.parquet")
    assert decode(path.read_bytes(), "parquet").column("id").to_pylist() == ids
    with pytest.raises(ClientError) as refused:
        client.submit_job("demo", "file:///etc/passwd")
    assert refused.value.status_code == 403 and refused.value.code == "location_forbidden"


def test_client_drift_methods(client: Client, tmp_path: Path) -> None:
    reference = tmp_path / "train.csv"
    reference.write_bytes(encode(None, dataset(300, seed=14)[1], "csv"))
    assert client.set_reference("demo", 1, path=str(reference))["format"] == "csv"
    job = client.run_drift("demo")
    assert client.wait_for_job(job["id"], poll=0.2, timeout=120)["status"] == "succeeded"
    drift = client.get_drift("demo", version=1)
    assert drift["versions"][0]["reference"]["uri"].endswith("/train.csv")
    assert drift["versions"][0]["latest"]["status"] == "insufficient_data"
    with pytest.raises(ValueError, match="uri or path"):
        client.set_reference("demo", 1)
