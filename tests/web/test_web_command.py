"""``mlops web``: the UI's pages alone, as the guide's web-ui Deployment runs them."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.cli.live_server import LiveServer, free_port, spawn


def test_mlops_web_serves_the_pages_and_probes_but_no_api(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    process = spawn(["web"], port, tmp_path / "data", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        page = httpx.get(f"{url}/login", timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["cache-control"] == "no-store"
        assert '<button type="submit">Sign in</button>' in page.text
        asset = httpx.get(f"{url}/assets/app.js", timeout=10)
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith("text/javascript")
        assert httpx.get(f"{url}/assets/..%2Fweb.py", timeout=10).status_code == 404
        # The API is the gateway's other route: not served by this process.
        assert httpx.get(f"{url}/api/v1/models", timeout=10).status_code == 404
        assert (
            httpx.get(f"{url}/", timeout=10, follow_redirects=False).headers["location"]
            == "/models"
        )
        assert "Web UI at http://127.0.0.1:" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_mlops_up_prints_the_ui_url_first(live: LiveServer, live_workdir: Path) -> None:
    announced = [
        line for line in (live_workdir / "up.log").read_text().splitlines() if " INFO " not in line
    ]
    first = next(i for i, line in enumerate(announced) if live.url in line)
    assert announced[first] == f"Web UI:    {live.url}/ (sign in as below)"
