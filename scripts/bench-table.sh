#!/usr/bin/env bash
# The speed table of docs/performance.md on this machine: every qfae build present (build/ with
# Debian's LibTorch, build-wheel/ with PyPI's) x fp32 / bf16, training and evaluation steps of a
# config on random images, with each run's matmul probe (the peak its utilisation compares with).
# Runs alternate between builds, round after round, so that a slow minute does not favour one.
# Writes a Markdown table headed by the date, the CPU model and its bf16 units, the core count,
# the commit and the LibTorch versions. Run it on a quiet machine: nothing else may compute.
#
#   scripts/bench-table.sh --encoder DINO.pt --perceptual MAE.pt [--config configs/brats.yaml]
#       [--batch 2] [--threads N] [--warmup 1] [--iters 3] [--rounds 2] [--out bench-table.md]
#
# The backbones are TorchScript exports (scripts/export_backbone.py; --random-init is enough for
# timing); nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/brats.yaml encoder="" perceptual="" batch=2 threads="" warmup=1 iters=3 rounds=2
out=bench-table.md
die() { echo "[bench-table] $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --config) config=$2 ;;
    --encoder) encoder=$2 ;;
    --perceptual) perceptual=$2 ;;
    --batch) batch=$2 ;;
    --threads) threads=$2 ;;
    --warmup) warmup=$2 ;;
    --iters) iters=$2 ;;
    --rounds) rounds=$2 ;;
    --out) out=$2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (--help lists them)" ;;
  esac
  (($# >= 2)) || die "$1 needs a value"
  shift 2
done
[[ -f $encoder ]] || die "--encoder: '$encoder' is not a file (export one with scripts/export_backbone.py)"
[[ -f $perceptual ]] || die "--perceptual: '$perceptual' is not a file"
[[ -f $config ]] || die "--config: '$config' is not a file"
builds=()
[[ -x build/qfae ]] && builds+=(build)
[[ -x build-wheel/qfae ]] && builds+=(build-wheel)
((${#builds[@]})) || die "no build/qfae or build-wheel/qfae: build first (scripts/build.sh)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sets=(--set "backbone.encoders=[$encoder]" --set "backbone.perceptual=$perceptual")
[[ -n $threads ]] && sets+=(--set "threads=$threads")
for ((round = 1; round <= rounds; ++round)); do
  for precision in fp32 bf16; do
    for b in "${builds[@]}"; do
      json=$work/$b-$precision-$round.json
      echo "[bench-table] round $round/$rounds: $b, $precision" >&2
      "$b/qfae" bench --config "$config" "${sets[@]}" --device cpu --batch-size "$batch" \
        --warmup "$warmup" --iters "$iters" --precision "$precision" --json "$json" -q \
        > "$work/$b-$precision-$round.log" 2>&1 ||
        die "$b/qfae bench failed: $(tail -n 3 "$work/$b-$precision-$round.log")"
    done
  done
done
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
units=$(grep -o -w -E 'amx_bf16|avx512_bf16|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit+=" (with uncommitted changes)"
python3 - "$work" "$out" "$cpu" "${units:-none}" "$(nproc)" "$commit" "$config" "$batch" \
  "$warmup" "$iters" "$rounds" "${builds[@]}" <<'PY'
import datetime, json, sys
from pathlib import Path
work, out, cpu, units, cores, commit, config, batch, warmup, iters, rounds, *builds = sys.argv[1:]
names = {"build": "default (Debian's LibTorch)", "build-wheel": "wheel (PyPI's LibTorch)"}
rows, versions = [], {}
def phase(run, name):
    return next(p for p in run["phases"] if p["phase"] == name)
def span(values, fmt):
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else lo + "–" + hi
def median(values):
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2
for b in builds:
    steps = {}
    for precision in ("fp32", "bf16"):
        runs = [json.loads(p.read_text()) for p in sorted(Path(work).glob(f"{b}-{precision}-*.json"))]
        versions[b] = runs[0]["torch_version"]
        cells = [names.get(b, b), versions[b], f"{precision} → {runs[0]['precision']}"]
        for name in ("train", "eval"):
            values = [phase(r, name)["step_s"]["median"] for r in runs]
            steps[(precision, name)] = median(values)
            cells.append(span(values, "{:.2f}"))
        for name in ("train", "eval"):
            cells.append(span([100 * phase(r, name)["utilisation"] for r in runs], "{:.0f}") + " %")
        cells.append(span([1000 * r["matmul_probe"]["tflops"] for r in runs], "{:.0f}"))
        if precision == "fp32":
            cells.append("–")
        else:  # the fp32 row's median step time over this row's, rounds pooled by their median
            cells.append(" / ".join(f"{steps[('fp32', n)] / steps[('bf16', n)]:.2f}×"
                                    for n in ("train", "eval")))
        rows.append(cells)
threads = json.loads(next(Path(work).glob("*.json")).read_text())["threads"]
lines = [
    f"Measured {datetime.date.today().isoformat()} by scripts/bench-table.sh on {cpu} "
    f"({cores} cores, {threads} threads; {units.strip()}), commit {commit}: `{config}`, batch "
    f"{batch}, random images, {warmup} warm-up + {iters} timed steps (median), {rounds} rounds "
    "(a range when they differ).",
    "",
    "| build | LibTorch | precision asked → run | train s/step | eval s/step | train util | "
    "eval util | matmul probe GFLOP/s | speed vs fp32 (train / eval) |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|",
]
lines += ["| " + " | ".join(r) + " |" for r in rows]
lines += ["", "Utilisation: FLOPs per step (qfae's count) / median step time / the same run's "
          "matmul probe, a (2048, 2048) product at the precision the step ran in. Speed vs fp32: "
          "the same build's fp32 step time over this row's (medians over the rounds)."]
Path(out).write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "[bench-table] wrote $out" >&2
