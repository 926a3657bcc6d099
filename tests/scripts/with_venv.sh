#!/usr/bin/env bash
# Runs a script test with the torch + timm environment of scripts/install-torch.sh; without it,
# prints one line saying why and exits 77 (CTest's SKIP_RETURN_CODE for these tests). The scripts
# themselves skip the same way when that python cannot import torch or timm.
# Usage: with_venv.sh VENV_PYTHON SCRIPT [ARGS...]
set -euo pipefail
py=$1
shift
if [[ ! -x $py ]]; then
  echo "SKIP: no Python environment at $py (scripts/install-torch.sh makes it: torch, timm)"
  exit 77
fi
exec "$py" "$@"
