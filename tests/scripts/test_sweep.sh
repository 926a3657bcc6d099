#!/usr/bin/env bash
# scripts/sweep.sh end to end on the tiny backbones: two seeds train, evaluate, and the summary
# has a mean ± std row whose mean is the average of the two runs' image AUROC.
# Usage: test_sweep.sh <repo root> <qfae binary>
set -euo pipefail
root="$1" qfae="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$qfae" prepare --synthetic "$tmp/data" --image-size 32 --train 16 --val 4 --test-normal 4 \
  --test-anomalous 4
data="$tmp/data"
source "$root/tests/scripts/tiny_sweep.sh"
printf 'name: tiny\n' > "$tmp/tiny.yaml"
bash "$root/scripts/sweep.sh" --config "$tmp/tiny.yaml" --seeds "3 4" --out "$tmp/sweep" \
  --qfae "$qfae" -- "${sets[@]}"
check_mean "$tmp/sweep/summary" tiny 3 4
echo "sweep ok"
