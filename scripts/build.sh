#!/usr/bin/env bash
# Configures and builds qfae (Release, Ninja) into build/; installs the Debian packages first.
# Arguments are build targets (scripts/demo.sh builds only `qfae`); none builds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh ${QFAE_WITH_PYTHON:+--with-python}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build ${1:+--target "$@"}
