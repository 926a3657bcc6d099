#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (what CI runs). QFAE_TORCH=wheel tests the build
# against PyPI's LibTorch 2.x with CUDA (on the CPU where there is no GPU), in build-wheel/.
set -euo pipefail
cd "$(dirname "$0")/.."
# PyPI's torch + timm rebuild the backbones of the training-trajectory test (CTest's Trajectory)
# in both builds; the environment is made once and reused.
bash scripts/install-deps.sh
bash scripts/install-torch.sh >/dev/null
QFAE_WITH_PYTHON=1 QFAE_WITH_SLURM=1 QFAE_WITH_BROWSER=1 bash scripts/build.sh
build=${QFAE_BUILD_DIR:-build}
[[ ${QFAE_TORCH:-debian} == wheel ]] && build=${QFAE_BUILD_DIR:-build-wheel}
# ctest -j runs several qfae processes at once; OpenMP threads that keep spinning after each
# parallel region (the default) would take the cores from the other processes' threads.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
