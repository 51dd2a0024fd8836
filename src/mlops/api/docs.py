"""``/docs``: Swagger UI served by the platform itself, offline and under a strict CSP.

FastAPI's page loads Swagger UI from a CDN (blank when offline or air-gapped) and
starts it with an inline script. Here the assets come from the pinned
``swagger-ui-py`` package (Swagger UI 5, which reads OpenAPI 3.1) and the start-up
code is a static file of ours, so the page's policy allows no inline script.
Only the files the page needs are served, by name. ReDoc is not offered.
"""

from __future__ import annotations

import html
from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from mlops.errors import NotFound

router = APIRouter(include_in_schema=False)
ASSETS_PATH = "/docs/assets"
_JS = "text/javascript; charset=utf-8"


def _swagger_dir() -> Path:
    # find_spec locates the package without importing it (it imports jinja2 and yaml).
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


_SWAGGER = _swagger_dir()
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", _JS),
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css; charset=utf-8"),
    "favicon-32x32.png": (_SWAGGER / "favicon-32x32.png", "image/png"),
    "swagger-init.js": (Path(__file__).parent / "static" / "swagger-init.js", _JS),
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs_page(request: Request) -> HTMLResponse:
    prefix = request.scope.get("root_path", "").rstrip("/")
    page = _PAGE.format(
        title=html.escape(f"{request.app.title} - docs"),
        assets=html.escape(prefix + ASSETS_PATH),
        openapi=html.escape(prefix + (request.app.openapi_url or "/openapi.json")),
    )
    return HTMLResponse(page)


@router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> FileResponse:
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFound(f"no docs asset {name!r}; the docs page is at /docs")
    path, media_type = asset
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=3600"})
