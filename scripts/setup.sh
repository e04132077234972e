#!/usr/bin/env bash
# Create .venv and install stargan. Safe to re-run (it only adds).
#   bash scripts/setup.sh runtime   the package alone: what `demo.sh` needs (train, sample, evaluate)
#   bash scripts/setup.sh dev       plus the test and lint tools and every extra (`test.sh`; default)
# torch is pinned to the CPU build served here; unpinned, pip would pull the multi-GB CUDA one.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-dev}" in
    runtime) target="." ;;
    dev) target=".[dev]" ;;
    *)
        echo "usage: bash scripts/setup.sh [runtime|dev] (got '$1')" >&2
        exit 2
        ;;
esac
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
