"""The CLI answers without importing the server or any model library.

Every command's ``--help`` is run (walking the command tree, so new commands are
covered), and the modules loaded afterwards are checked: a regression fails here,
deterministically, rather than as a slower ``mlops`` on someone's laptop.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from mlops.cli.main import app
from tests.imports_probe import HEAVY, MODEL_LIBRARIES, run_probe


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_walk_finds_every_group_and_command() -> None:
    # The walk itself must see the tree; otherwise the next test checks nothing.
    assert () in COMMANDS
    for expected in [("up",), ("model-server",), ("db", "upgrade"), ("models", "list")]:
        assert expected in COMMANDS
    assert ("models", "deploy") in COMMANDS
    assert len(COMMANDS) > 20


def test_every_help_imports_no_server_or_model_library() -> None:
    paths = json.dumps([list(path) for path in COMMANDS])
    _, report = run_probe(
        f"""
        import json, sys
        from mlops.cli.main import app
        heavy = {sorted(HEAVY)!r}
        _exit = {{}}
        for path in json.loads({paths!r}):
            try:
                app([*path, "--help"], prog_name="mlops")
            except SystemExit as stop:
                code = stop.code
            loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
            _exit[" ".join(path) or "mlops"] = [code, loaded]
        """
    )
    results = report["exit"]
    assert isinstance(results, dict) and len(results) == len(COMMANDS)
    failed = {command: code for command, (code, _) in results.items() if code not in (0, None)}
    assert not failed, failed
    # After each command: the first command to import a heavy library is named.
    for command, (_, loaded) in results.items():
        assert loaded == [], f"`{command} --help` imported {loaded}"


def test_the_clients_page_limit_is_the_servers() -> None:
    # The client keeps its own copy so that it need not import the server (FastAPI).
    from mlops.api.paging import MAX_PAGE
    from mlops.client import Client

    assert Client.MAX_PAGE == MAX_PAGE


def test_the_clis_components_are_the_apps() -> None:
    # Named in the CLI too, so that importing it does not import the server.
    from mlops.api.app import ALL_COMPONENTS
    from mlops.cli import serve

    assert serve.ALL_COMPONENTS == ALL_COMPONENTS


def test_building_the_app_imports_no_model_library() -> None:
    # The API server and a model server import a model library only with a model of
    # its format; here no model is loaded at all.
    loaded, _ = run_probe(
        """
        from mlops.api.app import create_app
        from mlops.config import load_settings
        create_app(load_settings(secret_key="k" * 64))
        """
    )
    assert "fastapi" in loaded
    assert not loaded & MODEL_LIBRARIES, sorted(loaded & MODEL_LIBRARIES)
    assert not loaded & {"onnx", "onnxruntime", "alembic"}, sorted(loaded & HEAVY)


def test_a_model_server_imports_only_what_serving_needs() -> None:
    # `mlops model-server` builds the serving component alone: no registry, web UI or
    # worker code, nor the libraries only they use (the template engine, the job formats).
    loaded, report = run_probe(
        """
        import sys
        from mlops.api.app import create_app
        from mlops.config import load_settings
        create_app(load_settings(secret_key="k" * 64), components={"serving"})
        _exit = sorted(
            name for name in sys.modules
            if name.startswith(("mlops.registry.router", "mlops.web", "mlops.workers",
                                "mlops.auth.router", "mlops.traffic"))
        )
        """
    )
    assert "fastapi" in loaded
    assert report["exit"] == [], report["exit"]
    assert not loaded & {"jinja2", "pyarrow", "boto3", "httpx"}, sorted(loaded)


def test_the_embedded_default_imports_no_redis_or_prometheus_client() -> None:
    # Without MLOPS_REDIS_URL or MLOPS_PROMETHEUS_URL their client libraries cost nothing.
    loaded, _ = run_probe(
        """
        from mlops.api.app import create_app
        from mlops.config import load_settings
        settings = load_settings(secret_key="k" * 64)
        assert settings.redis_url is None and settings.prometheus_url is None
        create_app(settings, components={"api", "serving"})
        """
    )
    assert "fastapi" in loaded
    assert not loaded & {"redis", "httpx"}, sorted(loaded & {"redis", "httpx"})
