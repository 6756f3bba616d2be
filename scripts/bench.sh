#!/usr/bin/env bash
# All benchmarks (they print figures and ratios against a reference measured in the same run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -m bench tests/bench -s -p no:randomly "$@"
