"""Jobs, users and API keys in the browser."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.cli.live_server import LiveServer
from tests.web.browser import sign_in


def test_submit_a_batch_job_and_download_its_output(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    data = tmp_path / "customers.csv"
    rows = "\n".join(f"r{i},{i},{i + 1},{i + 2},{i + 3},{i + 4}" for i in range(50))
    data.write_text("id,f0,f1,f2,f3,f4\n" + rows + "\n")
    sign_in(page, "admin", live.admin_password, "/jobs")
    page.get_by_label("Model").fill("demo")
    page.get_by_label("Data set (CSV, Parquet or JSONL)").set_input_files(data)
    page.get_by_role("button", name="Submit job").click()
    row = page.locator("#jobs tbody tr").first
    expect(row.locator(".job-status")).to_have_text("succeeded", timeout=90_000)
    expect(row.locator("progress")).to_have_attribute("value", "100")
    with page.expect_download() as download:
        row.get_by_role("link", name="output").click()
    saved = tmp_path / "out.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert len(lines) == 51  # a header and one line per row
    assert lines[0] == '"id","prediction"'


def test_a_bad_job_shows_the_api_error_next_to_the_form(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    sign_in(page, "admin", live.admin_password, "/jobs")
    page.get_by_label("Model").fill("no-such-model")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#submit-error")).to_have_text("Choose a data set file.")
    data = tmp_path / "rows.csv"
    data.write_text("f0,f1,f2,f3,f4\n1,2,3,4,5\n")
    page.get_by_label("Data set (CSV, Parquet or JSONL)").set_input_files(data)
    page.get_by_role("button", name="Submit job").click()
    error = page.locator("#submit-error")
    expect(error).to_contain_text("no-such-model")
    expect(error).to_contain_text("(404 model_not_found)")


def test_users_and_api_keys(page: Page, live: LiveServer) -> None:
    sign_in(page, "admin", live.admin_password, "/users")
    page.get_by_label("Username").fill("ana-ui")
    page.get_by_label("Password (at least 12 characters)").fill("short")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#user-error")).to_contain_text("422")
    page.get_by_label("Password (at least 12 characters)").fill("ana-Passphrase-4242")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Add user").click()
    row = page.locator("#users tbody tr", has_text="ana-ui")
    expect(row.get_by_label("Role of ana-ui")).to_have_value("editor")
    row.get_by_role("button", name="Disable ana-ui").click()
    expect(page.locator("#users tbody tr", has_text="ana-ui")).to_contain_text("disabled")

    page.get_by_role("link", name="Account").click()
    page.get_by_label("Key name").fill("ci-pipeline")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key-value")).to_contain_text("mlops_")
    key_row = page.locator("#keys tbody tr", has_text="ci-pipeline")
    expect(key_row).to_contain_text("active")
    key_row.get_by_role("button", name="Revoke key ci-pipeline").click()
    expect(page.locator("#keys tbody tr", has_text="ci-pipeline")).to_contain_text("revoked")
