"""The critical user journeys against a live system, non-destructive and idempotent:

    cd tests/deployment && python smoke_tests.py --environment staging

Log in, list models, predict with the default model (the guide's request), a V2
infer, read a model's metrics; with --allow-writes also register a throwaway model
version, move an alias to it, predict, roll back and archive the throwaway model.
Exits 1 when any journey fails (the CI post-deploy step then rolls back).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# Run as a script from anywhere in a checkout: the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from tests.deployment.deployment_checks import (  # noqa: E402
    CheckFailed,
    Target,
    client,
    credential,
    expect,
    parser,
    report,
    run_checks,
    target_of,
)
from tests.deployment.http_client import Client  # noqa: E402

GUIDE_ROWS = [[1, 2, 3, 4, 5]]
Check = Callable[[], str]


def journeys(http: Client, t: Target, args: object) -> list[tuple[str, Check]]:
    state: dict[str, str] = {}

    def headers() -> dict[str, str]:
        if "token" not in state:
            raise CheckFailed("needs a login")
        return {"Authorization": f"Bearer {state['token']}"}

    def login() -> str:
        state["token"] = credential(http, t.base_url)
        return "authenticated"

    def list_models() -> str:
        body = expect(http.get(f"{t.base_url}/api/v1/models", headers=headers()), 200, "models")
        state["models"] = ",".join(m["name"] for m in body["items"])
        return f"{len(body['items'])} models"

    def predict() -> str:
        response = http.post(
            f"{t.model_url}/api/v1/models/predict", json={"data": GUIDE_ROWS}, headers=headers()
        )
        body = expect(response, 200, "predict")
        state["default"], state["version"] = body["model"], str(body["version"])
        return f"{body['model']} v{body['version']}: {body['predictions']}"

    def v2_infer() -> str:
        if "default" not in state:
            raise CheckFailed("needs the default model (predict failed)")
        # The input's name and type from the model's own metadata, as a V2 client does.
        meta = expect(
            http.get(f"{t.model_url}/v2/models/{state['default']}", headers=headers()),
            200,
            "V2 metadata",
        )
        first = meta["inputs"][0]
        body = {
            "inputs": [
                {
                    "name": first["name"],
                    "shape": [1, len(GUIDE_ROWS[0])],
                    "datatype": first["datatype"],
                    "data": GUIDE_ROWS[0],
                }
            ]
        }
        response = http.post(
            f"{t.model_url}/v2/models/{state['default']}/infer", json=body, headers=headers()
        )
        answer = expect(response, 200, "V2 infer")
        return f"{len(answer['outputs'])} outputs"

    def model_metrics() -> str:
        if "default" not in state:
            raise CheckFailed("needs the default model (predict failed)")
        url = f"{t.base_url}/api/v1/models/{state['default']}/versions/{state['version']}"
        body = expect(http.get(url, headers=headers()), 200, "version")
        return f"metrics {sorted(body.get('metrics', {}))}"

    checks: list[tuple[str, Check]] = [
        ("login", login),
        ("list models", list_models),
        ("predict (default model)", predict),
        ("V2 infer", v2_infer),
        ("model metrics", model_metrics),
    ]
    if getattr(args, "allow_writes", False):
        checks.append(("register, release, roll back", lambda: release_journey(http, t, headers)))
    return checks


def release_journey(http: Client, t: Target, headers: Callable[[], dict[str, str]]) -> str:
    """A throwaway model: its version is a copy of the default model's current file."""
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    default = expect(
        http.get(f"{t.base_url}/api/v1/settings/default-model", headers=headers()), 200, "default"
    )["name"]
    model = expect(http.get(f"{t.base_url}/api/v1/models/{default}", headers=headers()), 200, "m")
    version = next(a["version"] for a in model["aliases"] if a["name"] == "production")
    download = http.get(
        f"{t.base_url}/api/v1/models/{default}/versions/{version}/artifact", headers=headers()
    )
    expect(download, 200, "download")
    filename = download.headers.get("content-disposition", "model.onnx").split("filename=")[-1]
    expect(
        http.post(f"{t.base_url}/api/v1/models", json={"name": name}, headers=headers()),
        201,
        "create",
    )
    try:
        for _ in range(2):
            files = {"file": (filename.strip('"'), download.content, "application/octet-stream")}
            up = http.post(
                f"{t.base_url}/api/v1/models/{name}/versions", files=files, headers=headers()
            )
            expect(up, 201, "upload")
        alias = f"{t.base_url}/api/v1/models/{name}/aliases/production"
        for v in (1, 2):
            expect(http.put(alias, json={"version": v}, headers=headers()), 200, "alias")
        # Servers reload within seconds of an alias move: poll, with a deadline.
        deadline = time.monotonic() + 30
        while True:
            served = http.post(
                f"{t.model_url}/api/v1/models/{name}/predict",
                json={"data": GUIDE_ROWS},
                headers=headers(),
            )
            if served.status_code == 200 and served.json()["version"] == 2:
                break
            if time.monotonic() > deadline:
                expect(served, 200, "predict")
                raise CheckFailed("the alias move was not served within 30 s")
            time.sleep(0.5)
        back = expect(http.post(f"{alias}/rollback", headers=headers()), 200, "rollback")
        if back["version"] != 1:
            raise CheckFailed(f"rollback went to v{back['version']}")
    finally:
        http.delete(f"{t.base_url}/api/v1/models/{name}?force=true", headers=headers())
    return f"{name}: v1 -> v2 -> rolled back to v1, archived"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--allow-writes", action="store_true", help="also run the release journey")
    args = p.parse_args(argv)
    target = target_of(args)
    with client(args.timeout) as http:
        code: int = report(run_checks(journeys(http, target, args)), args.json)
        return code


if __name__ == "__main__":
    sys.exit(main())
