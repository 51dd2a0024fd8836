"""The release manager's journey in a real Chromium: create, upload (one refused),
promote, canary with both lines on the live chart under load, roll back, audit."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.cli.live_server import LiveServer
from tests.web.browser import Load, api_token, ready, sign_in

HOSTILE = "<script>window.pwned=1</script><img src=x onerror=window.pwned=1>"


def drop_file(page: Page, selector: str, path: Path) -> None:
    """Drag and drop ``path`` onto ``selector``, as a person dropping a file does."""
    transfer = page.evaluate_handle(
        """([bytes, name]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name));
            return dt;
        }""",
        [list(path.read_bytes()), path.name],
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def confirm(page: Page, text: str) -> None:
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-text")).to_have_text(text)
    dialog.get_by_role("button", name="Confirm").click()


def test_release_journey(page: Page, live: LiveServer, model_files: dict[str, Path]) -> None:
    sign_in(page, "admin", live.admin_password)

    # Create a model whose description is markup: it shows as text, nothing runs.
    page.get_by_label("Name", exact=True).fill("churn")
    page.get_by_label("Description").fill(HOSTILE)
    page.get_by_role("button", name="Create model").click()
    page.wait_for_url("**/models/churn")
    ready(page)
    expect(page.locator("#model-description")).to_have_text(HOSTILE)
    assert page.evaluate("window.pwned") is None

    # Upload v1 with the file chooser, and a refused file: its message, next to the form.
    page.get_by_label("Model file").set_input_files(model_files["onnx"])
    page.get_by_label("Metadata (JSON, optional)").fill('{"metrics": {"auc": 0.91}}')
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#model-status")).to_have_text("Uploaded model.onnx as v1.")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    page.get_by_label("Model file").set_input_files(model_files["pickle_as_onnx"])
    page.get_by_role("button", name="Upload").click()
    refusal = page.locator("#upload-error")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("pickle")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "0")
    # v2 by drag and drop.
    drop_file(page, "#drop-zone", model_files["onnx"])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#model-status")).to_have_text("Uploaded model.onnx as v2.")
    versions = page.locator("#versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("auc=0.91")
    expect(versions.first).to_contain_text("onnx")

    # Promote v1 to production, with a confirmation naming the change.
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_role("button", name="Promote").click()
    confirm(page, "Move production of churn to v1?")
    expect(page.locator("#aliases tbody tr").first).to_contain_text("v1")

    # A 10 % canary on v2, and both lines on the live chart while a load runs.
    page.get_by_role("link", name="Deployment").click()
    page.wait_for_url("**/models/churn/deployment")
    ready(page)
    page.get_by_label("Canary version (empty: none)").fill("2")
    page.get_by_label("Canary percent of requests").fill("10")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#state")).to_contain_text("v2 at 10% of requests")
    with Load(live.url, api_token(live), "churn"):
        primary = page.locator('figure[data-metric="rps"] path.role-primary')
        canary = page.locator('figure[data-metric="rps"] path.role-canary')
        expect(primary).to_have_attribute("data-version", "1", timeout=60_000)
        expect(canary).to_have_attribute("data-version", "2", timeout=60_000)
        expect(canary).not_to_have_attribute("data-points", "0", timeout=60_000)
        expect(primary).not_to_have_attribute("data-points", "0", timeout=60_000)
        expect(page.locator(".legend")).to_contain_text("v2 (canary)")
        # A guard no canary can meet (1 us per row): it trips, and the page says why and when.
        page.get_by_label("Guard the canary").check()
        page.get_by_label("Highest p95 per row (ms)").fill("0.001")
        page.get_by_label("Requests before judging").fill("5")
        page.get_by_role("button", name="Save policy").click()
        trip = page.locator("#guard-trip")
        expect(trip).to_contain_text("took canary v2 out of traffic", timeout=60_000)
        expect(trip).to_contain_text("p95 latency per row")
        expect(page.locator("#state")).to_contain_text("Canarynone")

    # Release v2, then roll back: the confirmation says from which version to which.
    page.goto("/models/churn")
    ready(page)
    page.get_by_label("Version", exact=True).select_option("2")
    page.get_by_role("button", name="Promote").click()
    confirm(page, "Move production of churn from v1 to v2?")
    expect(page.locator("#model-status")).to_have_text("production now points at v2.")
    page.get_by_role("button", name="Roll back production").click()
    confirm(page, "Roll back production of churn from v2 to v1?")
    expect(page.locator("#model-status")).to_have_text("production rolled back from v2 to v1.")

    # The audit log shows the rollback, filtered by action and target.
    page.get_by_role("link", name="Audit log").click()
    ready(page)
    page.get_by_label("Action").fill("alias.rolled_back")
    page.get_by_label("Target starts with").fill("model:churn")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit?action=alias.rolled_back&target=model%3Achurn")
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("admin")
    expect(rows.first).to_contain_text("alias.rolled_back")
    # The filter is in the URL: back returns to the unfiltered log.
    page.go_back()
    expect(page.get_by_label("Action")).to_have_value("")
