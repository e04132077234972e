#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: lint, fast tests, then slow tests.
# Pass --fast to skip the slow tier; any other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
marker=()
if [ "${1:-}" = "--fast" ]; then
    marker=(-m "not slow")
    shift
fi
.venv/bin/python -m ruff check src tests benchmarks
.venv/bin/python -m ruff format --check src tests benchmarks
.venv/bin/python -m pytest "${marker[@]}" "$@"
