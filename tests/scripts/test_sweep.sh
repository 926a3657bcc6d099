#!/usr/bin/env bash
# scripts/sweep.sh end to end on the tiny backbones: two seeds train, evaluate, and the summary
# has a mean ± std row whose mean is the average of the two runs' image AUROC, and a report page
# linking both runs' pages; an --out that is a file is refused before anything runs.
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
# --out naming a file (or a folder under one) stops at once with exit 2, naming it; no run starts.
touch "$tmp/a-file"
for bad in "$tmp/a-file" "$tmp/a-file/below"; do
  rc=0
  bash "$root/scripts/sweep.sh" --config "$tmp/tiny.yaml" --seeds 3 --out "$bad" --qfae "$qfae" \
    -- "${sets[@]}" 2> "$tmp/err" || rc=$?
  if [[ $rc != 2 ]] || ! grep -q -- "--out $bad" "$tmp/err"; then
    echo "sweep --out $bad: expected exit 2 naming it, got $rc: $(cat "$tmp/err")" >&2
    exit 1
  fi
done
bash "$root/scripts/sweep.sh" --config "$tmp/tiny.yaml" --seeds "3 4" --out "$tmp/sweep" \
  --qfae "$qfae" -- "${sets[@]}"
check_mean "$tmp/sweep/summary" tiny 3 4
for seed in 3 4; do
  link="href=\"tiny-seed$seed-test-last/report.html\""
  if ! grep -q "$link" "$tmp/sweep/summary/report.html" ||
     [[ ! -f $tmp/sweep/summary/tiny-seed$seed-test-last/report.html ]]; then
    echo "sweep: summary/report.html has no $link, or that page is missing" >&2
    exit 1
  fi
done
echo "sweep ok"
