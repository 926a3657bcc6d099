#!/usr/bin/env bash
# Installs PyPI's PyTorch (LibTorch 2.x built with CUDA 13), timm, numpy, safetensors, pydicom
# (whose test DICOMs check qfae's DICOM reader) and nibabel (NIfTI twins of DICOM series in the
# tests) into a Python virtual environment outside the work tree, for the CUDA build
# (-DQFAE_TORCH=wheel) and the export scripts. Idempotent: an environment that already holds the
# pinned versions is reused as it is.
#   QFAE_TORCH_VENV  where the environment lives (default ~/.cache/qfae/torch-venv)
#   QFAE_PYTHON_BIN  the Python that creates it (default Debian's /usr/bin/python3, with python3-venv)
# Prints the environment's path last, so `venv=$(bash scripts/install-torch.sh | tail -n1)` works.
set -euo pipefail

# torch 2.11.0's PyPI wheel is built with CUDA 13.0 (the toolkit under /usr/local/cuda, and the GPU
# machines' PyTorch as of 2026-11-28); its nvidia-* dependencies bring the matching CUDA libraries.
# torchvision is timm's dependency, pinned to the release made for torch 2.11 (pip backtracks otherwise).
pins=(torch==2.11.0 torchvision==0.26.0 timm==1.0.22 numpy==2.3.5 safetensors==0.7.0
      pydicom==3.0.1 nibabel==5.4.2)
venv=${QFAE_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/qfae/torch-venv}
python_bin=${QFAE_PYTHON_BIN:-/usr/bin/python3}

log() { echo "[install-torch] $*" >&2; }

if [[ ! -x $venv/bin/python ]]; then
  log "creating $venv with $($python_bin --version 2>&1)"
  mkdir -p "$(dirname "$venv")"
  "$python_bin" -m venv "$venv"
fi
py=$venv/bin/python

# Every pin already installed: nothing to do (pip's own check costs several seconds).
if "$py" - "${pins[@]}" <<'EOF' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if all(version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
EOF
  log "present in $venv: ${pins[*]}"
else
  log "installing into $venv: ${pins[*]} (torch brings its CUDA 13 libraries, a few GB)"
  "$py" -m pip install -q --disable-pip-version-check "${pins[@]}" >&2
fi

"$py" - >&2 <<'EOF'
import torch, timm, numpy, safetensors, pydicom, nibabel
print(f"[install-torch] torch {torch.__version__} (CUDA {torch.version.cuda}), timm {timm.__version__}, "
      f"numpy {numpy.__version__}, safetensors {safetensors.__version__}, "
      f"pydicom {pydicom.__version__}, nibabel {nibabel.__version__}")
print(f"[install-torch] LibTorch's CMake files: {torch.utils.cmake_prefix_path}/Torch")
EOF
echo "$venv"
