#!/usr/bin/env bash
# scripts/bench-table.sh on the demo's tiny backbones: one round, one step; the table has a row
# per build present and precision, each probed, and its header names the CPU and the commit; bf16
# runs in bf16 where the CPU has the units. A
# missing export is refused with exit 2, naming the option.
# Usage: test_bench_table.sh <repo root>
set -euo pipefail
root="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
rc=0
bash scripts/bench-table.sh --encoder "$tmp/none.pt" --perceptual demo/backbones/tiny_mae64.pt \
  2> "$tmp/err" || rc=$?
[[ $rc == 2 ]] && grep -q -- "--encoder" "$tmp/err" || { echo "missing export: rc $rc, $(cat "$tmp/err")" >&2; exit 1; }
bash scripts/bench-table.sh --config configs/demo.yaml --encoder demo/backbones/tiny_dino64.pt \
  --perceptual demo/backbones/tiny_mae64.pt --batch 2 --warmup 0 --iters 1 --rounds 1 \
  --out "$tmp/table.md" > /dev/null 2> "$tmp/log"
builds=0
for b in build build-wheel; do [[ -x $b/qfae ]] && builds=$((builds + 1)); done
rows=$(grep -c -E '^\| (default|wheel) ' "$tmp/table.md" || true)
if [[ $rows != $((2 * builds)) ]]; then
  echo "expected $((2 * builds)) rows (builds x fp32/bf16), got $rows:" >&2
  cat "$tmp/table.md" >&2
  exit 1
fi
grep -q "commit $(git rev-parse --short HEAD)" "$tmp/table.md" || { echo "no commit in the header" >&2; exit 1; }
grep -q -E '\| fp32 → fp32 \|' "$tmp/table.md" || { echo "no fp32 row" >&2; exit 1; }
# bf16 runs where the kernel reports bf16 units (AMX or AVX512-BF16), fp32 elsewhere; its row
# gives its speed against the fp32 row.
if grep -q -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo; then want="bf16 → bf16"; else want="bf16 → fp32"; fi
grep -q -E "\| $want \|.*[0-9]× / [0-9.]+× \|\$" "$tmp/table.md" ||
  { echo "no '$want' row with its speed vs fp32:" >&2; cat "$tmp/table.md" >&2; exit 1; }
echo "bench table ok: $rows rows"
