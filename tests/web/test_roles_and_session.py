"""Role-aware pages, sign-in errors, sign-out and the back button, keyboard-only use."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.sync_api import Page, expect

from tests.cli.live_server import LiveServer
from tests.web.browser import api_token, sign_in

VIEWER_PASSWORD = "viewer-Passphrase-42"


def make_user(live: LiveServer, role: str) -> str:
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    answer = httpx.post(
        f"{live.url}/api/v1/users",
        json={"username": name, "password": VIEWER_PASSWORD, "role": role},
        headers={"Authorization": f"Bearer {api_token(live)}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return name


def test_a_wrong_password_shows_the_api_message(page: Page, live: LiveServer) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("401")
    expect(page).to_have_url(f"{live.url}/login")


def test_a_viewer_sees_no_write_control_and_a_write_gets_the_api_403(
    page: Page, live: LiveServer
) -> None:
    viewer = make_user(live, "viewer")
    sign_in(page, viewer, VIEWER_PASSWORD, "/models/demo")
    expect(page.locator("#versions tbody tr").first).to_contain_text("v1")
    for name in ("Promote", "Upload", "Roll back production"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.locator("#upload-form, #promote-form")).to_have_count(0)
    page.goto("/models")
    expect(page.locator("#models tbody tr", has_text="demo")).to_have_count(1)
    expect(page.get_by_role("button", name="Create model")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    page.goto("/models/demo/deployment")
    expect(page.get_by_role("button", name="Save policy")).to_have_count(0)
    expect(page.get_by_label("Alias taking the traffic")).to_be_disabled()

    # A write the page does not offer, made anyway from the page: the API refuses it.
    status, body = page.evaluate(
        """async () => {
            const s = await (await fetch("/api/v1/auth/session")).json();
            const r = await fetch("/api/v1/models/demo/aliases/production", {
                method: "PUT",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token},
                body: JSON.stringify({version: 1}),
            });
            return [r.status, await r.json()];
        }"""
    )
    assert status == 403
    assert body["error"]["message"] == "this needs the editor role; you are viewer"
    # An admin page opened by URL shows the API's 403 where the data would be.
    page.goto("/users")
    expect(page.locator("#users-error")).to_contain_text("this needs the admin role")
    expect(page.locator("#users-error")).to_contain_text("403")


def test_sign_out_then_back_shows_no_data(page: Page, live: LiveServer) -> None:
    sign_in(page, "admin", live.admin_password, "/models/demo")
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    cookie = next(c for c in page.context.cookies() if c["name"] == "mlops_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # out of the page scripts' reach
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.go_back()
    page.wait_for_url("**/login?next=*")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#versions")).to_have_count(0)
    # The token is revoked, not just forgotten by the browser.
    reused = httpx.get(
        f"{live.url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {cookie['value']}"},
        timeout=30,
    )
    assert reused.status_code == 401


def test_keyboard_only_sign_in_and_search(page: Page, live: LiveServer) -> None:
    page.goto("/login")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(live.admin_password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/models")
    page.locator("#who").filter(has_text="admin").wait_for()
    # Skip link first, then on to the search form, all by keyboard.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.get_by_label("Name starts with").focus()
    page.keyboard.type("dem")
    page.keyboard.press("Enter")
    page.wait_for_url("**/models?prefix=dem")
    page.locator("#models:not([aria-busy])").wait_for()
    link = page.get_by_role("link", name="demo", exact=True)
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/models/demo$"))
    expect(page.locator("#model-name")).to_have_text("demo")


def test_sign_in_never_redirects_to_another_site(page: Page, live: LiveServer) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        page.context.clear_cookies()
        page.goto("/login?next=" + quote(target, safe=""))
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(live.admin_password)
        page.get_by_role("button", name="Sign in").click()
        page.locator("body[data-ready]").wait_for()
        assert page.url.startswith(live.url + "/"), (target, page.url)


def test_keyboard_only_promote_and_roll_back(
    page: Page, live: LiveServer, model_files: dict[str, Path]
) -> None:
    headers = {"Authorization": f"Bearer {api_token(live)}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=60) as api:
        assert api.post("/api/v1/models", json={"name": "keys-only"}).status_code == 201
        for _ in range(2):
            with model_files["onnx"].open("rb") as f:
                answer = api.post("/api/v1/models/keys-only/versions", files={"file": f})
            assert answer.status_code == 201, answer.text
    sign_in(page, "admin", live.admin_password, "/models/keys-only")
    page.get_by_label("Version", exact=True).focus()
    page.keyboard.press("Home")  # the newest first: v2 is selected, v1 is the last option
    page.keyboard.press("End")
    expect(page.get_by_label("Version", exact=True)).to_have_value("1")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Promote")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#model-status")).to_have_text("production now points at v1.")
    # Escape cancels a confirmation: nothing moves.
    page.get_by_label("Version", exact=True).focus()
    page.keyboard.press("Home")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    expect(page.locator("#confirm")).not_to_be_visible()
    expect(page.locator("#aliases tbody tr").first).to_contain_text("v1")
