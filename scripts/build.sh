#!/usr/bin/env bash
# Configures and builds qfae (Release, Ninja); installs what it needs first. Arguments are build
# targets (scripts/demo.sh builds only `qfae`); none builds everything.
#   QFAE_TORCH=debian (default): Debian's LibTorch 1.13 for the CPU, into build/
#   QFAE_TORCH=wheel: PyPI's LibTorch 2.x with CUDA (scripts/install-torch.sh), into build-wheel/
#   QFAE_BUILD_DIR overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
torch=${QFAE_TORCH:-debian}
bash scripts/install-deps.sh ${QFAE_WITH_PYTHON:+--with-python} ${QFAE_WITH_SLURM:+--with-slurm} \
  ${QFAE_WITH_BROWSER:+--with-browser}
case $torch in
  debian) build=${QFAE_BUILD_DIR:-build}; extra=() ;;
  wheel)
    build=${QFAE_BUILD_DIR:-build-wheel}
    venv=$(bash scripts/install-torch.sh | tail -n 1)
    extra=(-DQFAE_TORCH=wheel "-DQFAE_TORCH_VENV=$venv") ;;
  *) echo "[build] QFAE_TORCH=$torch: expected debian or wheel" >&2; exit 2 ;;
esac
# CMake's own chatter is hidden; what qfae's build can and cannot do (NIfTI, DICOM) is shown.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" |
  { grep -E '^-- (NIfTI|DICOM) support' || true; }
cmake --build "$build" ${1:+--target "$@"}
