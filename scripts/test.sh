#!/usr/bin/env bash
# The whole test suite: lint, layer contracts, then pytest (benchmarks and slow runs excluded;
# see docs/performance.md and scripts/bench.sh for those).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
export QT_QPA_PLATFORM=offscreen
echo "== ruff"; .venv/bin/ruff check .
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest -m "not slow and not bench" "$@"
