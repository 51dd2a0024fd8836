"""Playwright with Debian's chromium (TESTING-TOOLS §7), against a live ``mlops up``.

Never ``playwright install``: the browser is the system's /usr/bin/chromium, installed
by scripts/ci-tools.sh. Without it the browser tests are skipped locally and fail in CI
(``CI=true``), so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.cli.live_server import LiveServer, running_up
from tests.system_tools import system_tool

CHROMIUM = os.environ.get("MLOPS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
TIMEOUT_MS = 20_000


def chromium_path() -> str:
    return system_tool(CHROMIUM)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A browser per test: Playwright's sync API keeps an event loop running while it is
    started, which the async tests sharing this worker could not run beside."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def live_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-live")


@pytest.fixture(scope="session")
def live(live_workdir: Path) -> Iterator[LiveServer]:
    with running_up(live_workdir) as server:
        yield server


@dataclass
class Problems:
    """Script errors and console errors (CSP refusals among them) a page raised."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # The API's own 4xx answers show in the console as failed loads; they are
        # expected in journeys that check errors, so only script errors count.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.messages.append(message.text)


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test, failing on any script error."""
    context = browser.new_context(base_url=live.url, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    problems = Problems()
    opened.on("console", problems.console)
    opened.on("pageerror", lambda exc: problems.messages.append(f"page error: {exc}"))
    yield opened
    context.close()
    assert problems.messages == [], problems.messages


def sign_in(page: Page, username: str, password: str, path: str = "/models") -> None:
    page.goto(path)
    page.wait_for_url("**/login?next=*")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}")
    page.locator("#who").filter(has_text=username).wait_for()
    ready(page)


def ready(page: Page) -> None:
    """Wait until the page has shown its data (app.js marks the body)."""
    page.locator("body[data-ready]").wait_for()


def api_token(live: LiveServer, username: str = "admin", password: str | None = None) -> str:
    answer = httpx.post(
        f"{live.url}/api/v1/auth/login",
        json={"username": username, "password": password or live.admin_password},
        timeout=30,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


# Read at import: the suite's autouse fixture clears MLOPS_* variables for each test.
_SCREENSHOTS = os.environ.get("MLOPS_UI_SCREENSHOTS")


def screenshot_dir() -> Path | None:
    """Where to save page screenshots: set by scripts/ui-screenshots.sh."""
    return Path(_SCREENSHOTS) if _SCREENSHOTS else None


class Load:
    """Predictions in the background, each with its own routing key, until stopped."""

    def __init__(self, url: str, token: str, model: str) -> None:
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, args=(url, token, model), daemon=True)

    def _run(self, url: str, token: str, model: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                client.post(
                    f"/api/v1/models/{model}/predict",
                    json={"data": [[0.1, 0.2, 0.3, 0.4, 0.5]]},
                    headers={"X-Routing-Key": f"k{self.sent}"},
                )
                self.sent += 1
                self._stop.wait(0.01)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
