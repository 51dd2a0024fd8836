"""Batch scoring benchmark (issue: background workers): see bench/README.md.

1. ``mlops up`` (SQLite, local files, its own worker) pinned to core 0; the demo model.
2. ROWS rows of 5 features as Parquet, uploaded as a data set; one job, one worker:
   rows/s from submission to ``succeeded`` (queueing and output included) and the
   worker's peak RSS.
3. The same job with a second worker (``mlops worker``) pinned to core 1.
4. ``mlflow models predict --env-manager local`` on the same rows as CSV, pinned to
   core 0, in a venv of its own (as bench/serve_bench.sh builds one).
5. 1,000 tiny jobs with the two workers.

Every process this starts is ended by its process group; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from mlops.client import Client

ROOT = Path(__file__).resolve().parent.parent
MLOPS = str(Path(sys.executable).with_name("mlops"))
SKLEARN_SPEC, SKOPS_SPEC = "scikit-learn==1.9.1", "skops==0.16.0"  # the project's (uv.lock)
TARGET_X_MLFLOW, TARGET_TWO_WORKERS, TARGET_RSS, TARGET_TINY_S = 5.0, 1.7, 1 << 30, 60.0


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


ROWS = env_int("ROWS", 10_000_000)
SHARD_ROWS = env_int("SHARD_ROWS", 250_000)
TINY_JOBS = env_int("TINY_JOBS", 1000)
MLFLOW = env_int("MLFLOW", 1)
STRICT = env_int("STRICT", 0)
MLFLOW_SPEC = os.environ.get("MLFLOW_SPEC", "mlflow")
MLFLOW_VENV = os.environ.get("MLFLOW_VENV", "")
CORES = (os.environ.get("SERVER_CPU", "0"), os.environ.get("LOAD_CPU", "1"))


def note(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str], core: str) -> Iterator[int]:
    """``args`` pinned to ``core`` in its own session; its pid. Ended by process group."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", core, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(url: str, log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer; see {log}")


def load() -> str:
    """The 1, 5 and 15-minute load averages: other work on the machine."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), bytes; 0 for pid 0."""
    if not pid:
        return 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def write_data(tmp: Path, rows: int) -> tuple[Path, Path]:
    """The same rows as Parquet (row groups of SHARD_ROWS rows) and CSV."""
    parquet_path, csv_path = tmp / "rows.parquet", tmp / "rows.csv"
    rng = np.random.default_rng(0)
    schema = pa.schema([(f"f{i}", pa.float64()) for i in range(5)])
    with pq.ParquetWriter(parquet_path, schema) as parquet, pcsv.CSVWriter(csv_path, schema) as csv:
        for start in range(0, rows, SHARD_ROWS):
            block = rng.normal(0.0, 2.0, size=(min(SHARD_ROWS, rows - start), 5))
            table = pa.Table.from_arrays([pa.array(block[:, i]) for i in range(5)], schema=schema)
            parquet.write_table(table)
            csv.write_table(table)
    return parquet_path, csv_path


def run_job(client: Client, uri: str, pid: int) -> tuple[float, dict[str, Any], int]:
    """(seconds from submission to the end, the job, the peak RSS of ``pid``)."""
    start = time.perf_counter()
    job = client.submit_job("demo", uri, shard_rows=SHARD_ROWS)
    done = client.wait_for_job(job["id"], poll=0.2)
    seconds = time.perf_counter() - start
    if done["status"] != "succeeded":
        raise SystemExit(f"job {job['id']} {done['status']}: {done['error']}")
    return seconds, done, peak_rss(pid)


def mlflow_predict(tmp: Path, client: Client, csv_path: Path, out: Path) -> tuple[float, str]:
    """(seconds of `mlflow models predict` on the CSV, MLflow's version)."""
    venv = Path(MLFLOW_VENV) if MLFLOW_VENV else tmp / "mlflow-venv"
    python = venv / "bin" / "python"
    log = out / "mlflow.log"
    if not MLFLOW_VENV:
        note(f"MLflow: installing {MLFLOW_SPEC} {SKLEARN_SPEC} {SKOPS_SPEC} into a temp venv")
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        with log.open("ab") as sink:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 MLFLOW_SPEC, SKLEARN_SPEC, SKOPS_SPEC],
                check=True, stdout=sink, stderr=subprocess.STDOUT, timeout=900,
            )  # fmt: skip
    version = subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    skops_file = client.download("demo", 1, tmp / "demo.skops")
    save = (
        "import sys, mlflow.sklearn, skops.io as sio\n"
        "model = sio.load(sys.argv[1], trusted=sio.get_untrusted_types(file=sys.argv[1]))\n"
        "mlflow.sklearn.save_model(model, sys.argv[2])\n"
    )
    model_dir = tmp / "mlflow-model"
    subprocess.run([str(python), "-c", save, str(skops_file), str(model_dir)], check=True)
    mlflow = str(venv / "bin" / "mlflow")
    start = time.perf_counter()
    with log.open("ab") as sink:
        subprocess.run(
            ["taskset", "-c", CORES[0], mlflow, "models", "predict", "-m", str(model_dir),
             "-i", str(csv_path), "-t", "csv", "-o", str(tmp / "mlflow-out.json"),
             "--env-manager", "local"],
            check=True, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return time.perf_counter() - start, version


def tiny_dataset(client: Client, tmp: Path) -> str:
    path = tmp / "tiny.csv"
    path.write_text("f0,f1,f2,f3,f4\n" + "1,2,3,4,5\n" * 10)
    return str(client.upload_dataset(path)["uri"])


def warm_up(client: Client, tmp: Path, jobs: int) -> None:
    """Tiny jobs first, so that every worker has loaded the model before a measurement."""
    uri = tiny_dataset(client, tmp)
    for job_id in [client.submit_job("demo", uri)["id"] for _ in range(jobs)]:
        client.wait_for_job(job_id, poll=0.1)


def rows_scored(metrics_url: str) -> float:
    """The worker's ``mlops_job_rows_total`` for batch jobs (its /metrics, open in dev)."""
    import httpx

    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith('mlops_job_rows_total{type="batch_predict"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def warm_worker(client: Client, uri: str, metrics_url: str) -> None:
    """The second worker loads the model before the measurement. Tiny jobs do not reach
    it: the first worker, woken by each submission in its own process, takes them all
    while the second polls; the whole job once, with its many shards, does."""
    for _ in range(3):
        run_job(client, uri, 0)
        if rows_scored(metrics_url) > 0:
            return
    raise SystemExit("the second worker took no shard of three warm-up jobs")


def tiny_jobs(client: Client, tmp: Path) -> tuple[float, float]:
    """Seconds for TINY_JOBS jobs of 10 rows each, from the first submission to the last
    end; and seconds until the last submission was answered."""
    uri = tiny_dataset(client, tmp)
    start = time.perf_counter()
    ids = [client.submit_job("demo", uri)["id"] for _ in range(TINY_JOBS)]
    submitted = time.perf_counter() - start
    for job_id in ids:
        done = client.wait_for_job(job_id, poll=0.2)
        if done["status"] != "succeeded":
            raise SystemExit(f"tiny job {job_id} {done['status']}: {done['error']}")
    return time.perf_counter() - start, submitted


def main() -> int:
    out = ROOT / "bench" / "results" / f"batch-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True)
    results: dict[str, Any] = {"rows": ROWS, "shard_rows": SHARD_ROWS, "cores": CORES}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as name:
        tmp = Path(name)
        note(f"writing {ROWS:,} rows as Parquet and CSV")
        parquet_path, csv_path = write_data(tmp, ROWS)
        password = secrets.token_urlsafe(18)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
        env.update(
            MLOPS_DATA_DIR=str(tmp / "data"), MLOPS_ADMIN_PASSWORD=password,
            MLOPS_ACCESS_LOG="false", MLOPS_LOG_JSON="false", MLOPS_WORKER_POLL_SECONDS="0.2",
        )  # fmt: skip
        port = free_port()
        up_log = out / "up.log"
        note(f"mlops up on core {CORES[0]} (its own worker)")
        with process([MLOPS, "up", "--port", str(port)], up_log, env, CORES[0]) as up_pid:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/health", up_log)
            with Client.login(url, "admin", password, timeout=120) as client:
                uri = client.upload_dataset(parquet_path)["uri"]
                warm_up(client, tmp, 2)
                note("one worker: scoring")
                results["load_before_one"] = load()
                one_s, one_job, one_rss = run_job(client, uri, up_pid)
                results.update(one_worker_s=one_s, one_worker_rows_s=ROWS / one_s,
                               up_peak_rss=one_rss, shards=one_job["shards_total"])  # fmt: skip
                note(f"one worker: {one_s:.1f} s, {ROWS / one_s:,.0f} rows/s")
                worker_log = out / "worker.log"
                worker_args = [MLOPS, "worker", "--port", str(free_port())]
                with process(worker_args, worker_log, env, CORES[1]) as worker_pid:
                    wait_http(f"http://127.0.0.1:{worker_args[-1]}/health", worker_log)
                    warm_worker(client, uri, f"http://127.0.0.1:{worker_args[-1]}/metrics")
                    note(f"two workers (cores {CORES[0]} and {CORES[1]}): scoring")
                    results["load_before_two"] = load()
                    two_s, _, worker_rss = run_job(client, uri, worker_pid)
                    results.update(two_workers_s=two_s, two_workers_rows_s=ROWS / two_s,
                                   worker_peak_rss=worker_rss)  # fmt: skip
                    note(f"two workers: {two_s:.1f} s, {ROWS / two_s:,.0f} rows/s")
                    if TINY_JOBS:
                        note(f"{TINY_JOBS} tiny jobs, two workers")
                        results["load_before_tiny"] = load()
                        results["tiny_jobs_s"], results["tiny_submit_s"] = tiny_jobs(client, tmp)
                        note(f"tiny jobs: {results['tiny_jobs_s']:.1f} s")
                if MLFLOW:
                    mlflow_s, version = mlflow_predict(tmp, client, csv_path, out)
                    results.update(mlflow_s=mlflow_s, mlflow_rows_s=ROWS / mlflow_s,
                                   mlflow_version=version)  # fmt: skip
                    note(f"mlflow {version} models predict: {mlflow_s:.1f} s")
    return report(results, out)


def report(results: dict[str, Any], out: Path) -> int:
    checks: list[tuple[str, bool]] = []
    one, two = results["one_worker_rows_s"], results["two_workers_rows_s"]
    rss, up_rss = results["worker_peak_rss"] / 2**20, results["up_peak_rss"] / 2**20
    lines = [
        f"rows {results['rows']:,}, shard_rows {results['shard_rows']:,}",
        f"one worker:  {one:,.0f} rows/s ({results['one_worker_s']:.1f} s)",
        f"two workers: {two:,.0f} rows/s, {two / one:.2f}x one worker",
        f"peak RSS: mlops worker {rss:.0f} MiB; mlops up (API, model server, worker) "
        f"{up_rss:.0f} MiB",
    ]
    checks.append((f"two workers >= {TARGET_TWO_WORKERS}x one", two / one >= TARGET_TWO_WORKERS))
    checks.append(("worker RSS < 1 GiB", results["worker_peak_rss"] < TARGET_RSS))
    if "mlflow_rows_s" in results:
        mlflow = results["mlflow_rows_s"]
        lines.append(
            f"mlflow {results['mlflow_version']} models predict: {mlflow:,.0f} rows/s "
            f"({results['mlflow_s']:.1f} s); one worker is {one / mlflow:.1f}x"
        )
        checks.append((f"one worker >= {TARGET_X_MLFLOW}x MLflow", one / mlflow >= TARGET_X_MLFLOW))
    if "tiny_jobs_s" in results:
        tiny = results["tiny_jobs_s"]
        lines.append(
            f"{TINY_JOBS} tiny jobs, two workers: {tiny:.1f} s (the submissions alone: "
            f"{results['tiny_submit_s']:.1f} s)"
        )
        checks.append((f"tiny jobs < {TARGET_TINY_S:.0f} s", tiny < TARGET_TINY_S))
    loads = [(name, results.get(f"load_before_{name}")) for name in ("one", "two", "tiny")]
    lines.append("load average before: " + "; ".join(f"{n} {v}" for n, v in loads if v))
    lines += [f"{'met' if ok else 'MISSED'}: {name}" for name, ok in checks]
    text = "\n".join(lines)
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results in {out}")
    return 3 if STRICT and not all(ok for _, ok in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
