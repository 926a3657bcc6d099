#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
QFAE_WITH_PYTHON=1 bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
