# sweep.sh's cluster mode, sourced by it: writes the Slurm array and summary scripts into
# <out>/slurm and submits them. Uses sweep.sh's variables (runs, options, paths).

# Absolute without resolving links (a link to the current build stays that link).
abs() { realpath -ms -- "$1"; }

# One shell word, in single quotes only when it needs quoting.
word() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"
  elif [[ "$1" != *"'"* ]]; then printf "'%s'" "$1"
  else printf '%q' "$1"; fi
}

# Arguments as lines of shell words, a new line before each option ("--set k=v" stays together).
option_lines() {
  local line="" a
  for a in "$@"; do
    if [[ "$a" == -* && -n "$line" ]]; then printf '%s\n' "$line"; line=""; fi
    line+="${line:+ }$(word "$a")"
  done
  [[ -z "$line" ]] || printf '%s\n' "$line"
}

# The #SBATCH lines both jobs share: where they run, for how long, on whose account, and
# the user's own --sbatch options (split at whitespace).
common_sbatch_lines() {
  local opts o
  [[ -z "$partition" ]] || echo "#SBATCH --partition=$partition"
  [[ -z "$time_limit" ]] || echo "#SBATCH --time=$time_limit"
  [[ -z "$account" ]] || echo "#SBATCH --account=$account"
  read -r -a opts <<< "$sbatch_opts"
  for o in "${opts[@]}"; do echo "#SBATCH $o"; done
}

write_slurm_scripts() {
  slurm_dir="$out/slurm"
  mkdir -p "$slurm_dir/logs"
  local out_abs label workdir i
  out_abs=$(abs "$out")
  label="qfae-$(basename "$out_abs")"
  workdir=$(word "$PWD")
  qfae=$(abs "$qfae")
  local device_opt=()
  [[ -z "$device" ]] || device_opt=(--device "$device")
  local dir; dir=$(word "$(abs "$slurm_dir")")
  gpu_text="$gpus GPUs"
  (( gpus != 1 )) || gpu_text="1 GPU"
  (( gpus != 0 )) || gpu_text="no GPU"

  {
    echo "#!/usr/bin/env bash"
    echo "# qfae sweep of ${names[*]} over seeds ${seed_list[*]}: one array task per run,"
    echo "# $gpu_text each. Written by scripts/sweep.sh on $(date '+%Y-%m-%d %H:%M'); submit with"
    echo "#   sbatch $dir/array.sbatch"
    echo "#   sbatch --dependency=afterany:<the array's job id> $dir/summary.sbatch"
    echo "#SBATCH --job-name=$label"
    echo "#SBATCH --array=0-$(( ${#run_name[@]} - 1 ))"
    echo "#SBATCH --nodes=1"
    if (( gpus > 0 )); then
      echo "#SBATCH --ntasks-per-node=$gpus"
      echo "#SBATCH --gpus-per-node=$gpus"
    else
      echo "#SBATCH --ntasks-per-node=1"
    fi
    echo "#SBATCH --output=$out_abs/slurm/logs/array-%A_%a.out"
    common_sbatch_lines
    echo "set -u"
    echo "cd $workdir || exit 2  # relative paths in the options below start here"
    echo
    echo "qfae=$(word "$qfae")"
    echo "out=$(word "$out_abs")"
    echo "device=($(option_lines "${device_opt[@]}"))  # empty: the config's device"
    echo "extra=(  # sweep.sh's options after --, for train and eval"
    option_lines "${extra[@]}" | sed 's/^/  /'
    echo ")"
    echo
    echo "# One array task per run: its config, name and seed."
    echo "case \"\${SLURM_ARRAY_TASK_ID:?submit this script with sbatch}\" in"
    for i in "${!run_name[@]}"; do
      echo "  $i) config=$(word "$(abs "${run_config[$i]}")")" \
           "name=$(word "${run_name[$i]%-seed*}") seed=${run_seed[$i]} ;;"
    done
    echo "  *) echo \"no run for array task \$SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;"
    echo "esac"
    cat <<'EOF'
run="$name-seed$seed"
log="$out/logs/train-$run.log"
mkdir -p "$out/logs"
rm -f "$out/logs/train-$run.rc"
echo "[sweep] $run on $(hostname): job $SLURM_JOB_ID, array task $SLURM_ARRAY_TASK_ID, log $log"
EOF
    if (( gpus > 1 )); then
      cat <<'EOF'

# One qfae process per GPU, started by srun: each reads its rank from SLURM_PROCID,
# SLURM_STEP_NUM_TASKS and SLURM_LOCALID, and finds rank 0 at MASTER_ADDR:MASTER_PORT. The port follows
# the job id, so array tasks that share a node differ (12000-31999, below Linux's ephemeral ports).
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=$((12000 + SLURM_JOB_ID % 20000))
export MASTER_ADDR MASTER_PORT
start=$(date +%s)
srun --kill-on-bad-exit=1 "$qfae" train --config "$config" --seed "$seed" -o "$out/runs" \
  --set "name=$run" -q "${device[@]}" "${extra[@]}" > "$log" 2>&1
EOF
    else
      cat <<'EOF'
start=$(date +%s)
"$qfae" train --config "$config" --seed "$seed" -o "$out/runs" --set "name=$run" -q \
  "${device[@]}" "${extra[@]}" > "$log" 2>&1
EOF
    fi
    cat <<'EOF'
rc=$?
echo "$rc" > "$out/logs/train-$run.rc"
echo "[sweep] $run: exit $rc after $(( $(date +%s) - start )) s"
exit "$rc"
EOF
  } > "$slurm_dir/array.sbatch"

  # The summary: this very script's --summary-only, with the sweep's configs, seeds and options.
  local summary_args=(--summary-only --out "$out_abs" --qfae "$qfae" --seeds "${seed_list[*]}")
  for i in "${!configs[@]}"; do summary_args+=(--config "$(abs "${configs[$i]}")"); done
  [[ -z "$device" ]] || summary_args+=(--devices "$device")
  [[ ${#extra[@]} -eq 0 ]] || summary_args+=(-- "${extra[@]}")
  {
    echo "#!/usr/bin/env bash"
    echo "# qfae sweep of ${names[*]}: eval of the array's runs and summary.{md,csv}. Written by"
    echo "# scripts/sweep.sh, which submits it with --dependency=afterany:<the array's job id>:"
    echo "# it runs once every array task has ended, and names and leaves out the runs that failed."
    echo "#SBATCH --job-name=$label-summary"
    echo "#SBATCH --nodes=1"
    echo "#SBATCH --ntasks=1"
    (( gpus == 0 )) || echo "#SBATCH --gpus-per-node=1"
    echo "#SBATCH --output=$out_abs/slurm/logs/summary-%j.out"
    common_sbatch_lines
    echo "cd $workdir || exit 2"
    echo "exec bash $(word "$(abs "$0")") \\"
    option_lines "${summary_args[@]}" | sed 's/^/  /; $!s/$/ \\/'
  } > "$slurm_dir/summary.sbatch"
}

print_dry_run() {
  echo "[sweep] wrote $slurm_dir/array.sbatch (${#run_name[@]} runs: ${run_name[*]})"
  echo "[sweep] and $slurm_dir/summary.sbatch; nothing submitted. To submit:"
  echo "  sbatch --parsable $slurm_dir/array.sbatch"
  echo "  sbatch --dependency=afterany:<that job id> $slurm_dir/summary.sbatch"
}

submit_slurm_jobs() {
  local run array_job summary_job
  for run in "${run_name[@]}"; do rm -f "$out/logs/train-$run.rc"; done  # none from before
  array_job=$(sbatch --parsable "$slurm_dir/array.sbatch") \
    || die "sbatch refused $slurm_dir/array.sbatch (see above); nothing was submitted"
  array_job="${array_job%%;*}"  # "id;cluster" on federated clusters
  summary_job=$(sbatch --parsable --dependency="afterany:$array_job" "$slurm_dir/summary.sbatch") \
    || die "sbatch refused $slurm_dir/summary.sbatch (see above); array job $array_job is" \
           "queued: cancel it with scancel $array_job or submit the summary by hand"
  summary_job="${summary_job%%;*}"
  echo "[sweep] array job $array_job: ${#run_name[@]} runs (${run_name[*]}), $gpu_text each"
  echo "[sweep] summary job $summary_job: runs after job $array_job (afterany)"
  echo "[sweep] train logs: $out/logs/train-<name>-seed<N>.log; Slurm output: $slurm_dir/logs"
  echo "[sweep] summary: $out/summary/summary.md and summary.csv once job $summary_job is done"
  echo "[sweep] follow with: squeue -j $array_job,$summary_job"
}
