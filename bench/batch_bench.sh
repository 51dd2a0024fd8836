#!/usr/bin/env bash
# Batch scoring: the platform's workers against `mlflow models predict` on the same rows.
#   bench/batch_bench.sh                         # 10 million rows (the issue's size)
#   ROWS=1000000 TINY_JOBS=200 bench/batch_bench.sh    # a quick look
# Variables and what is measured: bench/README.md; the logic: bench/batch_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "batch_bench: taskset (util-linux) is needed" >&2; exit 2; }
exec uv run --no-sync python bench/batch_bench.py
