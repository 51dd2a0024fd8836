"""The OpenAPI document says what the server does: schemathesis against a live ``mlops up``.

Every operation, as an admin, with valid and invalid data (``--mode all``) from the
examples, coverage and fuzzing phases, a fixed seed and an example budget. Checks:
no 5xx, every status, content type and body as documented, and 405 answers whose
``Allow`` header lists exactly the documented methods. A failure prints schemathesis'
report: each failing operation with a ``curl`` line that reproduces it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.live_server import LiveServer, running_up

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
]
SEED = 1
MAX_EXAMPLES = 25  # per operation and phase: ~3,000 cases, well under a minute here
LOGOUT_USER, LOGOUT_PASSWORD = "logout-probe", "Logout-Probe-Passphrase-42"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_up(tmp_path_factory.mktemp("conformance")) as server:
        yield server


def _create_logout_user(server: LiveServer) -> None:
    login = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": "admin", "password": server.admin_password},
    )
    assert login.status_code == 200, login.text
    created = httpx.post(
        f"{server.url}/api/v1/users",
        json={"username": LOGOUT_USER, "password": LOGOUT_PASSWORD, "role": "viewer"},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert created.status_code == 201, created.text


@pytest.mark.slow
def test_every_operation_conforms_to_the_openapi_document(live: LiveServer, tmp_path: Path) -> None:
    _create_logout_user(live)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.security.conformance_hooks",
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "CONFORMANCE_URL": live.url,
        "CONFORMANCE_ADMIN_PASSWORD": live.admin_password,
        "CONFORMANCE_LOGOUT_USER": LOGOUT_USER,
        "CONFORMANCE_LOGOUT_PASSWORD": LOGOUT_PASSWORD,
        "NO_COLOR": "1",
    }
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{live.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--request-timeout",
        "60",
    ]
    # cwd: schemathesis keeps its cache in ./.schemathesis
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, (
        "schemathesis found answers the OpenAPI document does not describe (fix the "
        f"server, or the route's responses=):\n{report[-20000:]}"
    )
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected is not None and tested is not None, report[-5000:]
    chosen, total = int(selected.group(1)), int(selected.group(2))
    assert chosen == total == int(tested.group(1)), f"not every operation ran:\n{report[-5000:]}"
    assert total >= 50, report[-5000:]
