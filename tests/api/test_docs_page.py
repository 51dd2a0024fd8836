"""/docs works offline: it references only the platform's own assets, which are served
with the right content types, and starts Swagger UI without an inline script."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.conftest import Platform

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.references.append(str(values[name]))
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


async def test_docs_page_references_only_local_assets_that_are_served(
    platform: Platform,
) -> None:
    page = await platform.client.get("/docs")
    assert page.status_code == 200
    parsed = _Page()
    parsed.feed(page.text)
    assert parsed.inline_scripts == [] and parsed.inline_handlers == []
    assert parsed.references, page.text
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in parsed.references)
    for ref in parsed.references:
        assert ref.startswith("/docs/assets/"), f"{ref} is not served by the platform"
        asset = await platform.client.get(ref)
        assert asset.status_code == 200, ref
        expected = CONTENT_TYPES[ref[ref.rindex(".") :]]
        assert asset.headers["content-type"].startswith(expected), (ref, asset.headers)
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert len(asset.content) > 0
    # The OpenAPI document the start-up script loads is named on the page.
    assert re.search(r'data-openapi-url="/openapi.json"', page.text)
    assert (await platform.client.get("/openapi.json")).json()["openapi"].startswith("3.1")


async def test_swagger_ui_reads_openapi_3_1_and_starts_from_our_script(
    platform: Platform,
) -> None:
    bundle = (await platform.client.get("/docs/assets/swagger-ui-bundle.js")).text
    # Swagger UI 5 is the first to render OpenAPI 3.1, which FastAPI writes.
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version is not None and int(version.group(1)) >= 5
    init = (await platform.client.get("/docs/assets/swagger-init.js")).text
    assert "SwaggerUIBundle(" in init
    assert "validatorUrl: null" in init  # no request to the public validator


async def test_only_listed_assets_are_served_and_redoc_is_off(platform: Platform) -> None:
    for path in (
        "/docs/assets/index.html",
        "/docs/assets/..%2F__init__.py",
        "/docs/assets/swagger-ui-bundle.js.map",
        "/redoc",
        "/docs/oauth2-redirect",
    ):
        response = await platform.client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] in ("not_found",), path
