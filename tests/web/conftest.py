"""Web UI fixtures: the registry's model files, and a browser against a live server."""

from __future__ import annotations

from tests.registry.conftest import model_files, registry_bucket, registry_settings
from tests.web.browser import browser, live, live_workdir, page

__all__ = [
    "browser",
    "live",
    "live_workdir",
    "model_files",
    "page",
    "registry_bucket",
    "registry_settings",
]
