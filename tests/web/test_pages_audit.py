"""Every page: no serious or critical axe-core violation, and no script error. With
MLOPS_UI_SCREENSHOTS=DIR (scripts/ui-screenshots.sh) it also saves each page's
screenshot and writes DIR/weights.md: bytes and requests of a first visit, and the
time until the page showed its data, measured in this headless Chromium."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.cli.live_server import LiveServer
from tests.web.browser import TIMEOUT_MS, Load, api_token, ready, screenshot_dir, sign_in

PAGES = {
    "login": "/login",
    "models": "/models",
    "model": "/models/demo",
    "deployment": "/models/demo/deployment",
    "live": "/models/demo/live",
    "jobs": "/jobs",
    "audit": "/audit",
    "users": "/users",
    "account": "/account",
}
BLOCKING = {"serious", "critical"}


@dataclass
class Weight:
    name: str
    path: str
    requests: int
    kilobytes: float
    ready_ms: float


def visit(browser: Browser, live: LiveServer, session: str, name: str, path: str) -> Weight:
    """A first visit in a fresh context (nothing cached), signed in with ``session``."""
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    if name != "login":
        context.add_cookies([{"name": "mlops_session", "value": session, "url": live.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(path)
        if name == "login":
            page.get_by_role("button", name="Sign in").wait_for()
        else:
            ready(page)
        if name == "live" or name == "deployment":
            page.locator("figure.chart").first.wait_for()
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in Axe().run(page).response["violations"]
            if v["impact"] in BLOCKING
        ]
        assert violations == [], f"{path}: {violations}"
        assert errors == [], f"{path}: {errors}"
        return measure(page, name, path)
    finally:
        context.close()


def measure(page: Page, name: str, path: str) -> Weight:
    entries = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType("navigation")[0];
            const resources = performance.getEntriesByType("resource")
                .filter((r) => !r.name.includes("axe"));
            const ready = performance.getEntriesByName("ready")[0];
            return {
                bytes: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
                requests: 1 + resources.length,
                ready: ready ? ready.startTime : nav.loadEventEnd,
            };
        }"""
    )
    shots = screenshot_dir()
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    return Weight(name, path, entries["requests"], entries["bytes"] / 1024, entries["ready"])


def test_every_page_is_accessible_and_measured(
    browser: Browser, page: Page, live: LiveServer
) -> None:
    sign_in(page, "admin", live.admin_password)
    session = next(c for c in page.context.cookies() if c["name"] == "mlops_session")["value"]
    shots = screenshot_dir()
    if shots is None:
        for name, path in PAGES.items():
            visit(browser, live, session, name, path)
        return
    # Screenshots for the docs: the live charts with some traffic on them.
    with Load(live.url, api_token(live), "demo"):
        page.goto("/models/demo/live")
        page.locator('path.role-primary:not([data-points="0"])').first.wait_for(timeout=60_000)
        weights = [visit(browser, live, session, name, path) for name, path in PAGES.items()]
    lines = [
        "# Web UI page weights",
        "",
        "First visit of each page with an empty cache (`scripts/ui-screenshots.sh`, headless",
        "Chromium on loopback): every request the page made, the API's JSON included, and",
        "the time from navigation until the page showed its data.",
        "",
        "| page | path | requests | transferred (KiB) | data shown after (ms) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {w.name} | `{w.path}` | {w.requests} | {w.kilobytes:.1f} | {w.ready_ms:.0f} |"
        for w in weights
    ]
    (shots / "weights.md").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name", ["models"])
def test_pages_are_not_in_the_openapi_document(live: LiveServer, name: str) -> None:
    import httpx

    document = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    assert PAGES[name] not in document["paths"]
    assert not any(path.startswith("/assets") for path in document["paths"])
