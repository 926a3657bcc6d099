#!/usr/bin/env bash
# Scripts.flop_count: PyTorch's FlopCounterMode (scripts/checks/count_flops.py, random-init
# real-size exports of the brain config's backbones) against qfae's analytic count, part by part
# (Flops.MatchesFlopCounterMode). Exit 77 (skipped) without the torch + timm environment.
# Usage: test_flop_count.sh <repo root> <venv python> <qfae_tests binary>
#   QFAE_EXPORT_CACHE   where the ~2.2 GB of exports are made once and reused (default
#                       ~/.cache/qfae/exports; shared with the export round-trip test)
#   QFAE_FLOP_COUNT_RUNS  the script's runs (default "meta:64 cpu:2": the brain config's batch on
#                       the meta device, and 2 images really executed on the CPU, ~2.5 min)
set -euo pipefail
root="$1" py="$2" tests="$3"
if [[ ! -x $py ]]; then
  echo "skipped: no Python environment at $py (bash scripts/install-torch.sh makes it)"
  exit 77
fi
if ! "$py" -c "import torch, timm" >/dev/null 2>&1; then
  echo "skipped: $py cannot import torch and timm (bash scripts/install-torch.sh installs them)"
  exit 77
fi
cache="${QFAE_EXPORT_CACHE:-$HOME/.cache/qfae/exports}"
runs=()
for r in ${QFAE_FLOP_COUNT_RUNS:-meta:64 cpu:2}; do runs+=(--run "$r"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$root/scripts/checks/count_flops.py" --config "$root/configs/brats.yaml" \
  --export-dir "$cache" "${runs[@]}" --json "$tmp/flops.json"
QFAE_FLOP_COUNT_JSON="$tmp/flops.json" "$tests" --gtest_filter=Flops.MatchesFlopCounterMode \
  | tee "$tmp/gtest.log"
if ! grep -q "PASSED.* 1 test" "$tmp/gtest.log" || grep -q "SKIPPED" "$tmp/gtest.log"; then
  echo "Flops.MatchesFlopCounterMode did not run and pass" >&2
  exit 1
fi
