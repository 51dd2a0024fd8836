#!/usr/bin/env bash
# Soak: mixed authenticated traffic at 50 connections for DURATION (300) s against
# `mlops up` and against mlops api + model-server on PostgreSQL, Redis and S3 (SeaweedFS).
#   bench/soak_bench.sh                              # both shapes, 300 s each (~13 min)
#   DURATION=60 SHAPES=embedded bench/soak_bench.sh  # a quick look
#   SOURCE=head STRICT=1 bench/soak_bench.sh         # HEAD's code; exit 3 on a missed goal
# Variables, the mix and the goals: bench/README.md; the logic: bench/soak_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/mlops ]] || uv sync --frozen -q
exec .venv/bin/python bench/soak_bench.py "$@"
