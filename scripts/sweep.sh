#!/usr/bin/env bash
# Trains and evaluates configs over several seeds and reports mean ± std per metric.
#
#   scripts/sweep.sh --config configs/brats.yaml [--config more.yaml] --seeds "1 2 3"
#                    [--devices "cuda:0 cuda:1"] [--out runs/sweep-brats] [--qfae build/qfae]
#                    [-- extra qfae options]
#
# Every (config, seed) pair is one run, named <config name>-seed<N> under <out>/runs, with its
# log in <out>/logs/train-<name>-seed<N>.log and its exit code in train-<name>-seed<N>.rc. Each
# --config is swept on its own (they are not layered as in qfae). One training process per
# device runs at a time (runs are dealt to the devices round-robin); then `qfae eval` over all
# runs writes <out>/summary/summary.{md,csv} with a mean ± std row per config. Options after
# `--` go to both train and eval (e.g. --set train.epochs=50). The same seed gives the same
# numbers on CPU.
#
# --summary-only: only the last step (eval and summary) over the runs already trained in <out>.
set -uo pipefail

die() { echo "sweep.sh: $*" >&2; exit 2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

mode=local configs=() seeds="1 2 3" devices="" out="" qfae="" extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --summary-only) mode=summary; shift; continue ;;
    --) shift; extra=("$@"); break ;;
    --config|--seeds|--devices|--out|--qfae) [[ $# -ge 2 ]] || die "$1 needs a value" ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  case "$1" in
    --config) configs+=("$2") ;;
    --seeds) seeds="$2" ;;
    --devices) devices="$2" ;;
    --out) out="$2" ;;
    --qfae) qfae="$2" ;;
  esac
  shift 2
done

[[ ${#configs[@]} -gt 0 ]] || die "--config is required (see --help)"
for c in "${configs[@]}"; do [[ -f "$c" ]] || die "--config $c: no such file"; done
read -r -a seed_list <<< "$seeds"
[[ ${#seed_list[@]} -gt 0 ]] || die "--seeds is empty"
for s in "${seed_list[@]}"; do [[ "$s" =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a seed"; done
qfae="${qfae:-$(dirname "$0")/../build/qfae}"
[[ -x "$qfae" ]] || die "$qfae is not built (run scripts/build.sh)"

# The runs: one per (config, seed), config by config; run_* arrays share their index.
names=() run_config=() run_name=() run_seed=()
for c in "${configs[@]}"; do
  name=$("$qfae" config --config "$c" "${extra[@]}" -q \
         | sed -E -n "s/^name: *[\"']?([^\"']*)[\"']? *$/\1/p" | head -1)
  [[ -n "$name" ]] || die "could not read the name of $c"
  for n in "${names[@]}"; do
    [[ "$n" != "$name" ]] || die "two configs are named '$name'; their runs would collide"
  done
  names+=("$name")
  for s in "${seed_list[@]}"; do
    for r in "${run_name[@]}"; do [[ "$r" != "$name-seed$s" ]] || die "seed $s is given twice"; done
    run_config+=("$c") run_name+=("$name-seed$s") run_seed+=("$s")
  done
done
out="${out:-runs/sweep-$(IFS=+; echo "${names[*]}")}"
read -r -a device_list <<< "${devices:-}"
[[ ${#device_list[@]} -gt 0 ]] || device_list=("")
mkdir -p "$out/logs"

# qfae eval over every run that trained (exit code 0 in its .rc file) -> <out>/summary.
summarize() {
  local checkpoints=() failed=0 run rc
  for run in "${run_name[@]}"; do
    if [[ "$(cat "$out/logs/train-$run.rc" 2>/dev/null)" == 0 ]]; then
      checkpoints+=(--checkpoint "$out/runs/$run/latest")
    else
      echo "[sweep] $run failed; see $out/logs/train-$run.log" >&2
      failed=$((failed + 1))
    fi
  done
  [[ ${#checkpoints[@]} -gt 0 ]] || { echo "sweep.sh: every training run failed" >&2; exit 1; }
  local eval_dev=()
  [[ -n "${device_list[0]}" ]] && eval_dev=(--device "${device_list[0]}")
  "$qfae" eval "${checkpoints[@]}" "${eval_dev[@]}" -o "$out/summary" -q "${extra[@]}" \
    | tee "$out/logs/eval.log"
  rc=${PIPESTATUS[0]}
  echo "[sweep] summary: $out/summary/summary.md and summary.csv"
  (( failed == 0 )) || exit 1
  exit "$rc"
}
[[ "$mode" == summary ]] && summarize

echo "[sweep] ${names[*]}: seeds ${seed_list[*]} on ${devices:-the configured device} -> $out"
# One worker per device trains its share of the runs one after the other.
for d in "${!device_list[@]}"; do
  (
    dev="${device_list[$d]}"
    for i in "${!run_name[@]}"; do
      (( i % ${#device_list[@]} == d )) || continue
      run="${run_name[$i]}"
      args=(train --config "${run_config[$i]}" --seed "${run_seed[$i]}" -o "$out/runs"
            --set "name=$run" -q)
      [[ -n "$dev" ]] && args+=(--device "$dev")
      start=$(date +%s)
      "$qfae" "${args[@]}" "${extra[@]}" > "$out/logs/train-$run.log" 2>&1
      rc=$?
      echo "$rc" > "$out/logs/train-$run.rc"
      echo "[sweep] $run${dev:+ on $dev}: exit $rc after $(( $(date +%s) - start )) s"
    done
  ) &
done
wait
summarize
