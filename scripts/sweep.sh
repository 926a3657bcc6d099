#!/usr/bin/env bash
# Trains and evaluates configs over several seeds and reports mean ± std per metric, on this
# machine or as a Slurm job array.
#
#   scripts/sweep.sh --config configs/brats.yaml [--config more.yaml] --seeds "1 2 3"
#                    [--devices "cuda:0 cuda:1"] [--out runs/sweep-brats] [--qfae build/qfae]
#                    [-- extra qfae options]
#   scripts/sweep.sh --slurm --config ... --seeds ... [--gpus-per-task N] [--device cuda]
#                    [--partition P] [--time T] [--account A] [--sbatch "more sbatch options"]
#
# Every (config, seed) pair is one run, named <config name>-seed<N> under <out>/runs, with its
# log in <out>/logs/train-<name>-seed<N>.log and its exit code in train-<name>-seed<N>.rc. Each
# --config is swept on its own (they are not layered as in qfae). Locally, one training process
# per device runs at a time (runs are dealt to the devices round-robin). Then `qfae eval` over
# all runs writes <out>/summary/summary.{md,csv} with a mean ± std row per config. Options after
# `--` go to both train and eval (e.g. --set train.epochs=50). The same seed gives the same
# numbers on CPU.
#
# --slurm writes <out>/slurm/array.sbatch, one array task per run on one node with N GPUs
# (--gpus-per-task, default 1; 0 asks for none; N > 1 starts one process per GPU with srun and
# sets MASTER_ADDR / MASTER_PORT), and <out>/slurm/summary.sbatch, which runs this script's
# --summary-only on the runs. It submits the array with `sbatch --parsable`, then the summary
# with --dependency=afterany:<array job id>, and prints both job ids; Slurm's own output goes to
# <out>/slurm/logs. The scripts hold absolute paths and cd to the folder the sweep was started
# in. --device is passed to train and eval (otherwise the config's device stands); --partition,
# --time, --account and the --sbatch options go into both scripts. --slurm-dry-run writes the
# scripts without submitting them (review, then submit as their first lines say). qfae must run
# where the sweep is started too: it reads the configs' names there.
# --summary-only: only the last step (eval and summary) over the runs already trained in <out>.
set -uo pipefail

die() { echo "sweep.sh: $*" >&2; exit 2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
set_mode() {
  [[ "$mode" == local ]] || die "use only one of --slurm, --slurm-dry-run, --summary-only"
  mode="$1"
}

mode=local configs=() seeds="1 2 3" devices="" out="" qfae="" extra=()
gpus=1 device="" partition="" time_limit="" account="" sbatch_opts="" slurm_opts=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --summary-only) set_mode summary; shift; continue ;;
    --slurm) set_mode slurm; shift; continue ;;
    --slurm-dry-run) set_mode slurm-dry-run; shift; continue ;;
    --) shift; extra=("$@"); break ;;
    --config|--seeds|--devices|--out|--qfae) [[ $# -ge 2 ]] || die "$1 needs a value" ;;
    --gpus-per-task|--device|--partition|--time|--account|--sbatch)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      slurm_opts+=("$1") ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  case "$1" in
    --config) configs+=("$2") ;;
    --seeds) seeds="$2" ;;
    --devices) devices="$2" ;;
    --out) out="$2" ;;
    --qfae) qfae="$2" ;;
    --gpus-per-task) gpus="$2" ;;
    --device) device="$2" ;;
    --partition) partition="$2" ;;
    --time) time_limit="$2" ;;
    --account) account="$2" ;;
    --sbatch) sbatch_opts="$2" ;;
  esac
  shift 2
done

if [[ "$mode" == slurm* ]]; then
  [[ -z "$devices" ]] || die "--devices is for local sweeps: Slurm gives each task its GPUs" \
                             "(--gpus-per-task N; --device cuda to insist on them)"
  [[ "$gpus" =~ ^[0-9]+$ ]] || die "--gpus-per-task: '$gpus' is not a number of GPUs"
  if [[ "$mode" == slurm ]] && ! command -v sbatch > /dev/null; then
    die "sbatch not found on PATH; --slurm-dry-run writes the batch scripts without submitting"
  fi
elif [[ ${#slurm_opts[@]} -gt 0 ]]; then
  die "${slurm_opts[0]} only applies with --slurm or --slurm-dry-run"
fi
[[ ${#configs[@]} -gt 0 ]] || die "--config is required (see --help)"
for c in "${configs[@]}"; do [[ -f "$c" ]] || die "--config $c: no such file"; done
read -r -a seed_list <<< "$seeds"
[[ ${#seed_list[@]} -gt 0 ]] || die "--seeds is empty"
for s in "${seed_list[@]}"; do [[ "$s" =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a seed"; done
qfae="${qfae:-$(dirname "$0")/../build/qfae}"
if [[ "$qfae" != */* ]]; then  # a bare name: from PATH
  found=$(command -v "$qfae") || die "--qfae $qfae: not found on PATH"
  qfae="$found"
fi
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
# Checked before any run starts: a file in the way would only fail later, at the first log.
[[ ! -e $out || -d $out ]] || die "--out $out: exists and is not a folder"
mkdir -p "$out/logs" 2>/dev/null || die "--out $out: cannot create $out/logs"
[[ -w $out/logs ]] || die "--out $out: $out/logs is not writable"

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
  echo "[sweep] report:  $out/summary/report.html (each run's page linked from it)"
  (( failed == 0 )) || exit 1
  exit "$rc"
}
[[ "$mode" == summary ]] && summarize

if [[ "$mode" == slurm* ]]; then
  # shellcheck source=scripts/sweep-slurm.sh
  source "$(dirname "${BASH_SOURCE[0]}")/sweep-slurm.sh"
  write_slurm_scripts
  [[ "$mode" == slurm ]] || { print_dry_run; exit 0; }
  submit_slurm_jobs
  exit
fi

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
