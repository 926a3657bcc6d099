#!/usr/bin/env bash
# Trains and evaluates one config over several seeds and reports mean ± std per metric.
#
#   scripts/sweep.sh --config configs/brats.yaml --seeds "1 2 3" [--devices "cuda:0 cuda:1"]
#                    [--out runs/sweep-brats] [--qfae build/qfae] [-- extra qfae options]
#
# One training process per device runs at a time (seeds are dealt to the devices round-robin);
# runs are named <config name>-seed<N> under <out>/runs, logs go to <out>/logs, and
# `qfae eval` over all of them writes <out>/summary/summary.{md,csv} with a mean ± std row.
# Options after `--` go to both train and eval (e.g. --set train.epochs=50). The same seed gives
# the same numbers on CPU.
set -uo pipefail

config="" seeds="1 2 3" devices="" out="" qfae="" extra=()
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --devices) devices="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --qfae) qfae="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "sweep.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$config" ]] || { echo "sweep.sh: --config is required (see --help)" >&2; exit 2; }
[[ -f "$config" ]] || { echo "sweep.sh: --config $config: no such file" >&2; exit 2; }
qfae="${qfae:-$(dirname "$0")/../build/qfae}"
[[ -x "$qfae" ]] || { echo "sweep.sh: $qfae is not built (run scripts/build.sh)" >&2; exit 2; }

name=$("$qfae" config --config "$config" "${extra[@]}" -q | sed -E -n "s/^name: *[\"']?([^\"']*)[\"']? *$/\1/p" | head -1)
[[ -n "$name" ]] || { echo "sweep.sh: could not read the config's name" >&2; exit 2; }
out="${out:-runs/sweep-$name}"
read -r -a seed_list <<< "$seeds"
read -r -a device_list <<< "${devices:-}"
[[ ${#device_list[@]} -gt 0 ]] || device_list=("")
mkdir -p "$out/logs"
echo "[sweep] $name: seeds ${seed_list[*]} on ${devices:-the configured device} -> $out"

# One worker per device trains its share of the seeds one after the other.
for d in "${!device_list[@]}"; do
  (
    dev="${device_list[$d]}"
    for i in "${!seed_list[@]}"; do
      (( i % ${#device_list[@]} == d )) || continue
      s="${seed_list[$i]}"
      args=(train --config "$config" --seed "$s" -o "$out/runs" --set "name=$name-seed$s" -q)
      [[ -n "$dev" ]] && args+=(--device "$dev")
      start=$(date +%s)
      "$qfae" "${args[@]}" "${extra[@]}" > "$out/logs/train-seed$s.log" 2>&1
      rc=$?
      echo "$rc" > "$out/logs/train-seed$s.rc"
      echo "[sweep] seed $s${dev:+ on $dev}: exit $rc after $(( $(date +%s) - start )) s"
    done
  ) &
done
wait

checkpoints=() failed=0
for s in "${seed_list[@]}"; do
  if [[ "$(cat "$out/logs/train-seed$s.rc" 2>/dev/null)" == 0 ]]; then
    checkpoints+=(--checkpoint "$out/runs/$name-seed$s/latest")
  else
    echo "[sweep] seed $s failed; see $out/logs/train-seed$s.log" >&2
    failed=$((failed + 1))
  fi
done
[[ ${#checkpoints[@]} -gt 0 ]] || { echo "sweep.sh: every training run failed" >&2; exit 1; }
eval_dev=()
[[ -n "${device_list[0]}" ]] && eval_dev=(--device "${device_list[0]}")
"$qfae" eval "${checkpoints[@]}" "${eval_dev[@]}" -o "$out/summary" -q "${extra[@]}" \
  | tee "$out/logs/eval.log"
rc=${PIPESTATUS[0]}
echo "[sweep] summary: $out/summary/summary.md and summary.csv"
(( failed == 0 )) || exit 1
exit "$rc"
