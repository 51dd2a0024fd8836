"""The web UI's pages and assets. Out of the OpenAPI document: they are not API.

Each page is a small HTML shell (Jinja2, autoescaped) and a script of ours that reads
and writes through the JSON API with the browser's session cookie; the pages hold no
data themselves, so they are served without a database query and never cached.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mlops.errors import NotFound
from mlops.registry.schemas import NAME_PATTERN

router = APIRouter(include_in_schema=False)
_HERE = Path(__file__).parent
STATIC = _HERE / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Only our own files, by name: nothing else on the disk can be asked for.
ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES}
_env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Each asset's URL carries a digest of its content, so browsers may keep it for long.
_DIGESTS = {name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for name, p in ASSETS.items()}
ModelName = Annotated[str, PathParam(pattern=NAME_PATTERN)]
_NO_STORE = {"Cache-Control": "no-store"}


def asset_url(name: str) -> str:
    return f"/assets/{name}?v={_DIGESTS[name]}"


def _page(template: str, *, title: str, script: str, **data: str) -> HTMLResponse:
    page = _env.get_template(template).render(
        title=title, script=asset_url(script), css=asset_url("app.css"), data=data
    )
    return HTMLResponse(page, headers=_NO_STORE)


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/models", status_code=303)


@router.get("/login")
async def login_page() -> HTMLResponse:
    return _page("login.html", title="Sign in", script="login.js")


@router.get("/models")
async def models_page() -> HTMLResponse:
    return _page("models.html", title="Models", script="models.js")


@router.get("/models/{name}")
async def model_page(name: ModelName) -> HTMLResponse:
    return _page("model.html", title=f"Model {name}", script="model.js", model=name)


@router.get("/models/{name}/deployment")
async def deployment_page(name: ModelName) -> HTMLResponse:
    return _page(
        "deployment.html", title=f"Deployment of {name}", script="deployment.js", model=name
    )


@router.get("/models/{name}/live")
async def live_page(name: ModelName) -> HTMLResponse:
    return _page("live.html", title=f"Live traffic of {name}", script="live.js", model=name)


@router.get("/jobs")
async def jobs_page() -> HTMLResponse:
    return _page("jobs.html", title="Jobs", script="jobs.js")


@router.get("/audit")
async def audit_page() -> HTMLResponse:
    return _page("audit.html", title="Audit log", script="audit.js")


@router.get("/users")
async def users_page() -> HTMLResponse:
    return _page("users.html", title="Users", script="users.js")


@router.get("/account")
async def account_page() -> HTMLResponse:
    return _page("account.html", title="Your account", script="account.js")


@router.get("/assets/{name}")
async def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"no web UI asset {name!r}")
    return FileResponse(
        path,
        media_type=_TYPES[path.suffix],
        # Revalidated (ETag): module imports between our scripts carry no digest.
        headers={"Cache-Control": "no-cache"},
    )
