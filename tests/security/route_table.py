"""The route × role table for test_route_matrix.py: for every operation of the OpenAPI
document, the least role that may call it and the answer a caller gets once past
authorization. A route missing here fails the matrix test, naming it: add its row.

Every probe is harmless and the same for every caller (a model that does not exist,
a body that fails validation after the role check, an expiry in the past), so the
whole matrix runs on one platform in any order; logout runs last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.auth.roles import Role

GHOST = "ghost-model"  # no such model
NO_ID = 2_147_483_000  # no such key or job
PAST = "2000-01-01T00:00:00Z"

Answer = tuple[int, str | None]  # status, and the error code when it is an error
BodyFor = Callable[[str], Any]  # the caller's password -> the JSON body


@dataclass(frozen=True)
class Row:
    """``role`` None: public (credentials are not looked at). ``allowed``: the answer of
    a caller whose role suffices; ``with_key``: the answer of an API key instead, where
    a login token is required."""

    method: str
    template: str
    path: str
    role: Role | None
    allowed: Answer
    json: Any = None
    body_for: BodyFor | None = None
    with_key: Answer | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return f"{self.method} {self.template}"


def _same_password(password: str) -> dict[str, str]:
    # The policy holds and the old password is right: refused only because it is the
    # same (422 weak_password), so nothing changes and no guess is counted.
    return {"old_password": password, "new_password": password}


V, E, A = Role.viewer, Role.editor, Role.admin
OK = (200, None)
GHOST_404 = (404, "model_not_found")
INVALID = (422, "validation_error")
M = f"/api/v1/models/{GHOST}"
PREDICT_BODY = {"data": [[1.0, 2.0]]}
V2_BODY = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}

ROWS: list[Row] = [
    # Probes and the protocol's server-level routes answer anyone.
    Row("GET", "/health", "/health", None, OK),
    Row("GET", "/ready", "/ready", None, OK),
    Row("GET", "/v2", "/v2", None, OK),
    Row("GET", "/v2/health/live", "/v2/health/live", None, OK),
    Row("GET", "/v2/health/ready", "/v2/health/ready", None, OK),
    Row("POST", "/api/v1/auth/login", "/api/v1/auth/login", None, INVALID, json={}),
    # The web UI's session: it reads the session cookie only, never the Authorization
    # header, so every caller here (none sends the cookie) is "not signed in".
    Row("POST", "/api/v1/auth/session", "/api/v1/auth/session", None, INVALID, json={}),
    Row("GET", "/api/v1/auth/session", "/api/v1/auth/session", None, (401, "no_session")),
    Row("DELETE", "/api/v1/auth/session", "/api/v1/auth/session", None, (204, None)),
    # Any role.
    Row("GET", "/api/v1/users/me", "/api/v1/users/me", V, OK),
    Row(
        "POST",
        "/api/v1/users/me/password",
        "/api/v1/users/me/password",
        V,
        (422, "weak_password"),
        body_for=_same_password,
        with_key=(403, "login_token_required"),
    ),
    Row(
        "POST",
        "/api/v1/api-keys",
        "/api/v1/api-keys",
        V,
        (422, "invalid_expiry"),
        json={"name": "probe", "expires_at": PAST},
        with_key=(403, "login_token_required"),
    ),
    Row("GET", "/api/v1/api-keys", "/api/v1/api-keys", V, OK),
    Row(
        "DELETE",
        "/api/v1/api-keys/{key_id}",
        f"/api/v1/api-keys/{NO_ID}",
        V,
        (404, "api_key_not_found"),
    ),
    Row("GET", "/api/v1/models", "/api/v1/models", V, OK),
    Row("GET", "/api/v1/models/{name}", M, V, GHOST_404),
    Row("GET", "/api/v1/models/{name}/versions", f"{M}/versions", V, GHOST_404),
    Row("GET", "/api/v1/models/{name}/versions/{version}", f"{M}/versions/1", V, GHOST_404),
    Row(
        "GET",
        "/api/v1/models/{name}/versions/{version}/artifact",
        f"{M}/versions/1/artifact",
        V,
        GHOST_404,
    ),
    Row(
        "GET",
        "/api/v1/models/{name}/aliases/{alias}/history",
        f"{M}/aliases/production/history",
        V,
        GHOST_404,
    ),
    Row("GET", "/api/v1/models/{name}/deployment", f"{M}/deployment", V, GHOST_404),
    Row("GET", "/api/v1/models/{name}/traffic", f"{M}/traffic", V, GHOST_404),
    Row("GET", "/api/v1/models/{name}/drift", f"{M}/drift", V, GHOST_404),
    Row(
        "GET",
        "/api/v1/settings/default-model",
        "/api/v1/settings/default-model",
        V,
        OK,
    ),
    Row("GET", "/api/v1/jobs", "/api/v1/jobs", V, OK),
    Row("GET", "/api/v1/jobs/{job_id}", f"/api/v1/jobs/{NO_ID}", V, (404, "job_not_found")),
    Row(
        "GET",
        "/api/v1/jobs/{job_id}/output",
        f"/api/v1/jobs/{NO_ID}/output",
        V,
        (404, "job_not_found"),
    ),
    Row(
        "POST",
        "/api/v1/models/predict",
        "/api/v1/models/predict",
        V,
        (409, "no_default_model"),
        json=PREDICT_BODY,
    ),
    Row("POST", "/api/v1/models/{name}/predict", f"{M}/predict", V, GHOST_404, json=PREDICT_BODY),
    Row("GET", "/v2/models/{name}", f"/v2/models/{GHOST}", V, GHOST_404),
    Row(
        "GET",
        "/v2/models/{name}/versions/{version}",
        f"/v2/models/{GHOST}/versions/1",
        V,
        GHOST_404,
    ),
    Row("GET", "/v2/models/{name}/ready", f"/v2/models/{GHOST}/ready", V, GHOST_404),
    Row(
        "GET",
        "/v2/models/{name}/versions/{version}/ready",
        f"/v2/models/{GHOST}/versions/1/ready",
        V,
        GHOST_404,
    ),
    Row("POST", "/v2/models/{name}/infer", f"/v2/models/{GHOST}/infer", V, GHOST_404, json=V2_BODY),
    Row(
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        f"/v2/models/{GHOST}/versions/1/infer",
        V,
        GHOST_404,
        json=V2_BODY,
    ),
    # Editors and admins.
    Row("POST", "/api/v1/models", "/api/v1/models", E, INVALID, json={}),
    Row("POST", "/api/v1/models/{name}/drift/run", f"{M}/drift/run", E, GHOST_404),
    Row(
        "PUT",
        "/api/v1/models/{name}/versions/{version}/reference",
        f"{M}/versions/1/reference",
        E,
        GHOST_404,
        json={"uri": "datasets/none.csv"},
    ),
    Row("PATCH", "/api/v1/models/{name}", M, E, GHOST_404, json={}),
    Row("DELETE", "/api/v1/models/{name}", M, E, GHOST_404),
    Row(
        "POST",
        "/api/v1/models/{name}/versions",
        f"{M}/versions",
        E,
        GHOST_404,
        content=b"--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    ),
    Row(
        "PATCH",
        "/api/v1/models/{name}/versions/{version}",
        f"{M}/versions/1",
        E,
        GHOST_404,
        json={},
    ),
    Row("DELETE", "/api/v1/models/{name}/versions/{version}", f"{M}/versions/1", E, GHOST_404),
    Row(
        "PUT",
        "/api/v1/models/{name}/aliases/{alias}",
        f"{M}/aliases/production",
        E,
        GHOST_404,
        json={"version": 1},
    ),
    Row(
        "DELETE",
        "/api/v1/models/{name}/aliases/{alias}",
        f"{M}/aliases/production",
        E,
        GHOST_404,
    ),
    Row(
        "POST",
        "/api/v1/models/{name}/aliases/{alias}/rollback",
        f"{M}/aliases/production/rollback",
        E,
        GHOST_404,
    ),
    Row("PUT", "/api/v1/models/{name}/deployment", f"{M}/deployment", E, GHOST_404, json={}),
    Row("POST", "/api/v1/jobs", "/api/v1/jobs", E, INVALID, json={}),
    Row(
        "POST",
        "/api/v1/jobs/{job_id}/cancel",
        f"/api/v1/jobs/{NO_ID}/cancel",
        E,
        (404, "job_not_found"),
    ),
    Row(
        "POST",
        "/api/v1/datasets",
        "/api/v1/datasets",
        E,
        (400, "no_file"),
        content=b"--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    ),
    # Admins only.
    Row("POST", "/api/v1/users", "/api/v1/users", A, INVALID, json={}),
    Row("GET", "/api/v1/users", "/api/v1/users", A, OK),
    Row(
        "PATCH",
        "/api/v1/users/{username}",
        "/api/v1/users/nobody",
        A,
        (404, "user_not_found"),
        json={},
    ),
    Row(
        "PUT",
        "/api/v1/settings/default-model",
        "/api/v1/settings/default-model",
        A,
        GHOST_404,
        json={"name": GHOST},
    ),
    Row("GET", "/api/v1/audit", "/api/v1/audit", A, OK),
    # Last: it ends the token it is sent (an API key is no token to end).
    Row(
        "POST",
        "/api/v1/auth/logout",
        "/api/v1/auth/logout",
        V,
        (204, None),
        with_key=(422, "not_a_token"),
    ),
]

# Requests whose query asks for more than the route's own role.
VARIANTS: list[Row] = [
    Row("GET", "/api/v1/api-keys", "/api/v1/api-keys?all=true", A, OK),
    Row("DELETE", "/api/v1/models/{name}", f"{M}?force=true", A, GHOST_404),
]
