#!/usr/bin/env bash
# Refresh docs/ui/: a screenshot of every web UI page and docs/ui/weights.md (each page's
# requests, bytes and time to show its data), from a live `mlops up` in headless chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
MLOPS_UI_SCREENSHOTS="$PWD/docs/ui" uv run pytest tests/web/test_pages_audit.py \
  -k accessible -q -p no:randomly -n 0
