"""The two platforms the soak benchmark runs against, each a context manager that
starts it (pinned to one core), yields how to reach and probe it, and removes all it
made: ``mlops up`` on a temp data dir (SQLite, in-process cache, local files), and
``mlops api`` + ``mlops model-server`` in production on a throwaway PostgreSQL
database, a Redis namespace (db 14) and a SeaweedFS bucket.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    MLOPS,
    ROOT,
    free_port,
    log,
    pinned,
    platform_env,
    redis_namespace_removed,
    running,
    throwaway_database,
    timed_run,
)
from soak_state import Probe, local_files

sys.path.insert(0, str(ROOT))  # the tests' service helpers: one way to start each server
from tests.seaweed import run_seaweedfs  # noqa: E402
from tests.services import ensure_postgres, ensure_redis  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/14"


@dataclass
class Platform:
    shape: str
    api_url: str
    model_url: str
    admin_password: str
    probe: Probe
    logs: dict[str, Path]
    settings: dict[str, str]  # what differs from the shipped defaults (secrets masked)


def masked(settings: dict[str, str]) -> dict[str, str]:
    secret = ("PASSWORD", "SECRET", "TOKEN")
    return {k: "(random)" if any(s in k for s in secret) else v for k, v in settings.items()}


# ----------------------------------------------------------------------------- the two shapes


@contextlib.contextmanager
def embedded(server_cpu: int, tmp: Path, source: dict[str, str]) -> Iterator[Platform]:
    data = tmp / "data"
    password = secrets.token_urlsafe(18)
    env = platform_env(data, MLOPS_ADMIN_PASSWORD=password, **source)
    port = free_port()
    log_file = tmp / "mlops-up.log"
    args = pinned(server_cpu, [MLOPS, "up", "--port", str(port)])
    with running(args, env, log_file, port=port) as server:
        probe = Probe(
            processes={"mlops up": server.process.pid},
            metrics={"mlops up": (f"{server.url}/metrics", {})},
            database_url=None,
            sqlite_path=data / "mlops.db",
            redis_url=None,
            redis_namespace="",
            list_objects=lambda: local_files(data, "data"),
        )
        settings = {"MLOPS_ADMIN_PASSWORD": password, "MLOPS_DATA_DIR": "(temp dir)"}
        yield Platform("embedded", server.url, server.url, password, probe, {"mlops up": log_file},
                       masked(settings))  # fmt: skip


@contextlib.contextmanager
def postgres_redis_s3(server_cpu: int, tmp: Path, source: dict[str, str]) -> Iterator[Platform]:
    run_id = secrets.token_hex(6)
    with contextlib.ExitStack() as stack:
        postgres, redis = ensure_postgres(POSTGRES_ADMIN_URL), ensure_redis(REDIS_URL)
        for service in (postgres, redis):
            log("soak_bench", service.describe())
            if service.stop is not None:  # started for this run: stopped after it
                stack.callback(service.stop)
        postgres_url, redis_url = postgres.url, redis.url
        database_url = stack.enter_context(throwaway_database(postgres_url, f"mlops_soak_{run_id}"))
        namespace = f"soak-{run_id}:"
        stack.enter_context(redis_namespace_removed(redis_url, namespace))
        (tmp / "s3").mkdir()
        s3 = stack.enter_context(run_seaweedfs(tmp / "s3"))
        bucket = s3.create_bucket("soak")
        password = secrets.token_urlsafe(18)
        metrics_token = secrets.token_urlsafe(32)
        settings = {
            "MLOPS_ENVIRONMENT": "production",
            "MLOPS_DATABASE_URL": database_url,
            "MLOPS_REDIS_URL": redis_url,
            "MLOPS_REDIS_NAMESPACE": namespace,
            "MLOPS_ARTIFACT_STORE": f"s3://{bucket}/platform",
            "MLOPS_S3_ENDPOINT_URL": s3.endpoint_url,
            "MLOPS_S3_REGION": s3.region,
            "MLOPS_SECRET_KEY": secrets.token_urlsafe(48),
            "MLOPS_ADMIN_PASSWORD": password,
            "MLOPS_METRICS_TOKEN": metrics_token,
        }
        data = tmp / "data"
        env = platform_env(data, **settings, **s3.aws_env(), **source)
        timed_run([MLOPS, "db", "upgrade"], env)
        servers, logs = {}, {}
        for name, verb in (("mlops api", "api"), ("mlops model-server", "model-server")):
            port = free_port()
            logs[name] = tmp / f"{verb}.log"
            args = pinned(server_cpu, [MLOPS, verb, "--port", str(port)])
            servers[name] = stack.enter_context(running(args, env, logs[name], port=port))
        client = s3.client()

        def objects() -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            keys = [f"bucket/{o['Key']}" for page in pages for o in page.get("Contents", [])]
            return sorted(keys) + local_files(data, "data")

        auth = {"Authorization": f"Bearer {metrics_token}"}
        probe = Probe(
            processes={name: s.process.pid for name, s in servers.items()},
            metrics={name: (f"{s.url}/metrics", auth) for name, s in servers.items()},
            database_url=database_url,
            sqlite_path=None,
            redis_url=redis_url,
            redis_namespace=namespace,
            list_objects=objects,
        )
        settings["MLOPS_DATABASE_URL"] = f"{postgres_url}/mlops_soak_<random>"
        yield Platform("postgres", servers["mlops api"].url, servers["mlops model-server"].url,
                       password, probe, logs, masked(settings))  # fmt: skip


Shape = Callable[[int, Path, dict[str, str]], contextlib.AbstractContextManager[Platform]]
SHAPES: dict[str, Shape] = {"embedded": embedded, "postgres": postgres_redis_s3}
