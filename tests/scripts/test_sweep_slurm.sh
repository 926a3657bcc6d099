#!/usr/bin/env bash
# scripts/sweep.sh --slurm. Always: the batch scripts of --slurm-dry-run, read and run outside
# Slurm with a stand-in qfae, srun and scontrol (each task's exact command line, MASTER_ADDR/PORT
# and srun for two GPUs, absolute paths, logs and exit codes, the summary's eval), and the
# errors. Where it can (root, with slurmctld, slurmd and munged installed): a private one-node
# Slurm in a temporary folder runs a two-seed tiny sweep whose summary job writes the mean of the
# two runs' AUROC, and a sweep with two GPUs per task (faked in gres.conf) in which srun starts
# the real qfae as two data-parallel ranks on the CPU (the losses of one process, one run folder),
# next to failing runs that the summary job (afterany) must still name.
# Usage: test_sweep_slurm.sh <repo root> <qfae binary>
set -euo pipefail
root=$(realpath "$1") qfae=$(realpath "$2")
sweep="$root/scripts/sweep.sh"
tmp=$(mktemp -d)
daemons=() ctld_pid=""  # the daemons this test started, slurmctld among them
cleanup() {
  if [[ -n "$ctld_pid" ]] && kill -0 "$ctld_pid" 2> /dev/null; then
    timeout 10 scancel --user="$(id -un)" 2> /dev/null || true  # SLURM_CONF: the private one
    for _ in $(seq 20); do [[ -z "$(timeout 5 squeue -h 2> /dev/null)" ]] && break; sleep 0.5; done
  fi
  if [[ ${#daemons[@]} -gt 0 ]]; then
    kill "${daemons[@]}" 2> /dev/null || true
    (sleep 10; kill -KILL "${daemons[@]}" 2> /dev/null) &
    local killer=$!
    wait "${daemons[@]}" 2> /dev/null || true
    kill "$killer" 2> /dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # so that the EXIT trap stops the daemons
fail() { echo "test_sweep_slurm: $*" >&2; exit 1; }

"$qfae" prepare --synthetic "$tmp/data" --image-size 32 --train 16 --val 4 --test-normal 4 \
  --test-anomalous 4 > /dev/null
data="$tmp/data"
source "$root/tests/scripts/tiny_sweep.sh"
printf 'name: tiny\n' > "$tmp/tiny.yaml"
printf 'name: other\n' > "$tmp/other.yaml"

# A stand-in qfae: `config` is the real one (sweep.sh reads the names with it); train and eval
# write their arguments, then the rank variables, to $QFAE_STUB_CALLS/<command>-<task>-<rank>,
# and succeed.
mkdir -p "$tmp/bin" "$tmp/fake"
cat > "$tmp/bin/qfae" <<EOF
#!/usr/bin/env bash
[[ "\$1" == config ]] && exec $(printf %q "$qfae") "\$@"
{ printf '%s\n' "\$@"
  echo "ENV \${SLURM_PROCID-} \${SLURM_NTASKS-} \${SLURM_JOB_ID-} \${MASTER_ADDR-} \${MASTER_PORT-}"
} > "\$QFAE_STUB_CALLS/\$1-\${SLURM_ARRAY_TASK_ID:-x}-\${SLURM_PROCID:-x}"
EOF
# Stand-ins for Slurm's srun (records its options, runs the command as rank 0) and scontrol.
cat > "$tmp/fake/srun" <<'EOF'
#!/usr/bin/env bash
echo "$1" > "$QFAE_STUB_CALLS/srun-$SLURM_ARRAY_TASK_ID"
shift
SLURM_PROCID=0 SLURM_NTASKS=2 exec "$@"
EOF
printf '#!/usr/bin/env bash\necho node7\n' > "$tmp/fake/scontrol"
chmod +x "$tmp/bin/qfae" "$tmp/fake/srun" "$tmp/fake/scontrol"

# expect_call <file> <args...>: the stand-in was called with exactly these arguments.
expect_call() {
  local file="$1"; shift
  [[ -f "$file" ]] || fail "no call recorded in $file"
  diff <(printf '%s\n' "$@") <(grep -v '^ENV ' "$file") > /dev/null \
    || fail "$file: expected: $* ; got: $(grep -v '^ENV ' "$file" | tr '\n' ' ')"
}
has() { grep -qxF -- "$2" "$1" || fail "$1 lacks the line: $2"; }
lacks() { ! grep -q -- "$2" "$1" || fail "$1 should not contain: $2"; }

# --- Dry run, two configs x two seeds, two GPUs per task, from another folder with relative
# paths: the scripts must hold absolute ones.
cd "$tmp"
bash "$sweep" --slurm-dry-run --config tiny.yaml --config "$tmp/other.yaml" --seeds "3 4" \
  --out dry --qfae bin/qfae --gpus-per-task 2 --device cuda --partition gpu --time 0:10:00 \
  --account proj --sbatch "--qos=high --mem=8G" -- "${sets[@]}" > dry.out
array="$tmp/dry/slurm/array.sbatch" summary="$tmp/dry/slurm/summary.sbatch"
for line in "#SBATCH --array=0-3" "#SBATCH --nodes=1" "#SBATCH --ntasks-per-node=2" \
            "#SBATCH --gpus-per-node=2" "#SBATCH --partition=gpu" "#SBATCH --time=0:10:00" \
            "#SBATCH --account=proj" "#SBATCH --qos=high" "#SBATCH --mem=8G" \
            "#SBATCH --output=$tmp/dry/slurm/logs/array-%A_%a.out" "qfae=$tmp/bin/qfae" \
            "out=$tmp/dry" "device=(--device cuda)  # empty: the config's device" \
            "  0) config=$tmp/tiny.yaml name=tiny seed=3 ;;" \
            "  3) config=$tmp/other.yaml name=other seed=4 ;;" "export MASTER_ADDR MASTER_PORT"; do
  has "$array" "$line"
done
for line in "#SBATCH --gpus-per-node=1" "#SBATCH --ntasks=1" "#SBATCH --partition=gpu" \
            "#SBATCH --qos=high" "  --summary-only \\" "  --config $tmp/tiny.yaml \\" \
            "  --config $tmp/other.yaml \\" "  --seeds '3 4' \\" "  --devices cuda \\"; do
  has "$summary" "$line"
done
grep -q "sbatch --dependency=afterany:" "$array" || fail "array.sbatch does not say how to submit"
[[ -z "$(ls dry/logs)" ]] || fail "a dry run wrote logs: $(ls dry/logs)"

# Each array task as Slurm would start it (task id, job id, node list), with the stand-ins.
export QFAE_STUB_CALLS="$tmp/calls"
mkdir -p "$QFAE_STUB_CALLS"
task=0
for name in tiny other; do
  for seed in 3 4; do
    env -u SLURM_PROCID PATH="$tmp/fake:$PATH" SLURM_ARRAY_TASK_ID=$task \
      SLURM_JOB_ID=$((20100 + task)) SLURM_JOB_NODELIST=node7 bash "$array" > /dev/null \
      || fail "array task $task failed"
    expect_call "$QFAE_STUB_CALLS/train-$task-0" train --config "$tmp/$name.yaml" --seed $seed \
      -o "$tmp/dry/runs" --set "name=$name-seed$seed" -q --device cuda "${sets[@]}"
    has "$QFAE_STUB_CALLS/train-$task-0" "ENV 0 2 $((20100 + task)) node7 $((12000 + 100 + task))"
    has "$QFAE_STUB_CALLS/srun-$task" "--kill-on-bad-exit=1"
    [[ "$(cat "dry/logs/train-$name-seed$seed.rc")" == 0 ]] || fail "no exit code 0 for task $task"
    [[ -f "dry/logs/train-$name-seed$seed.log" ]] || fail "no train log for task $task"
    task=$((task + 1))
  done
done
bash "$summary" > /dev/null || fail "the summary script failed"
checkpoints=()
for run in tiny-seed3 tiny-seed4 other-seed3 other-seed4; do
  checkpoints+=(--checkpoint "$tmp/dry/runs/$run/latest")
done
expect_call "$QFAE_STUB_CALLS/eval-x-x" eval "${checkpoints[@]}" --device cuda \
  -o "$tmp/dry/summary" -q "${sets[@]}"
echo "dry run, 2 GPUs per task: scripts and their 4 tasks and summary as expected"

# --- Dry run with the defaults (one GPU, the config's device) and with no GPU.
bash "$sweep" --slurm-dry-run --config tiny.yaml --seeds "3 4" --out one --qfae "$qfae" \
  > /dev/null
for line in "#SBATCH --array=0-1" "#SBATCH --ntasks-per-node=1" "#SBATCH --gpus-per-node=1" \
            "device=()  # empty: the config's device" "qfae=$qfae"; do
  has one/slurm/array.sbatch "$line"
done
lacks one/slurm/array.sbatch "srun"
lacks one/slurm/array.sbatch "MASTER_"
lacks one/slurm/summary.sbatch "--devices"
bash "$sweep" --slurm-dry-run --config tiny.yaml --seeds 3 --out cpu --qfae "$qfae" \
  --gpus-per-task 0 > /dev/null
lacks cpu/slurm/array.sbatch "--gpus"
lacks cpu/slurm/summary.sbatch "--gpus"
echo "dry run, 1 and 0 GPUs per task: as expected"

# --- Errors: exit 2 and a message that says what to do.
expect_error() {
  local want="$1" rc=0; shift
  "$@" > err.out 2>&1 || rc=$?
  [[ $rc == 2 ]] || fail "exit $rc (not 2) from: ${*: -3}"
  grep -q -- "$want" err.out || fail "no '$want' in: $(cat err.out)"
}
expect_error "slurm-dry-run" env PATH=/nonexistent "$BASH" "$sweep" --slurm --config tiny.yaml \
  --qfae "$qfae"
expect_error "unknown option '--gpus'" bash "$sweep" --slurm --gpus 2 --config tiny.yaml
expect_error "no such file" bash "$sweep" --slurm-dry-run --config missing.yaml --qfae "$qfae"
expect_error "only applies with --slurm" bash "$sweep" --config tiny.yaml --partition gpu
expect_error "--devices is for local sweeps" bash "$sweep" --slurm-dry-run --config tiny.yaml \
  --devices "cuda:0 cuda:1" --qfae "$qfae"
expect_error "not a number of GPUs" bash "$sweep" --slurm-dry-run --config tiny.yaml \
  --gpus-per-task two --qfae "$qfae"
expect_error "named 'tiny'" bash "$sweep" --slurm-dry-run --config tiny.yaml --config tiny.yaml \
  --qfae "$qfae"
echo "errors: as expected"

# --- A private single-node Slurm, where one can be started here.
why=""
[[ $(id -u) == 0 ]] || why="not root"
for tool in slurmctld slurmd sbatch squeue scontrol scancel srun munged mungekey python3; do
  command -v "$tool" > /dev/null || why="${why:+$why; }$tool is not installed"
done
if [[ -n "$why" ]]; then
  echo "sweep --slurm: script checks passed; real-Slurm part NOT run ($why)"
  exit 0
fi

s="$tmp/slurm" host=$(hostname -s)
mkdir -p "$s/state" "$s/spool" "$s/log"
chmod 711 "$tmp"  # munged wants every folder above its socket open to all (x, not r)
export SLURM_CONF="$s/slurm.conf"
mungekey -c -k "$s/munge.key" > /dev/null 2>&1
munged -F --key-file="$s/munge.key" --socket="$s/munge.sock" --pid-file="$s/munged.pid" \
  --seed-file="$s/munged.seed" --log-file="$s/log/munged.log" > "$s/log/munged.out" 2>&1 &
daemons+=($!)
for _ in $(seq 40); do [[ -S "$s/munge.sock" ]] && break; sleep 0.25; done
[[ -S "$s/munge.sock" ]] || fail "munged did not start: $(tail -5 "$s/log/munged.out")"
read -r ctld_port slurmd_port < <(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for x in socks: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in socks])')
touch "$s/gpu0" "$s/gpu1"  # counted as two GPUs (Slurm logs that they are not devices)
echo "NodeName=$host Name=gpu File=$s/gpu[0-1]" > "$s/gres.conf"
cat > "$s/slurm.conf" <<EOF
ClusterName=qfaetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$s/munge.sock
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/log/slurmctld.log
SlurmdLogFile=$s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 Gres=gpu:2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D > "$s/log/slurmctld.out" 2>&1 &
ctld_pid=$!
daemons+=($!)
slurmd -D -N "$host" > "$s/log/slurmd.out" 2>&1 &
daemons+=($!)
for _ in $(seq 60); do [[ "$(sinfo -h -N -o %t 2> /dev/null)" == idle ]] && break; sleep 0.5; done
[[ "$(sinfo -h -N -o %t 2> /dev/null)" == idle ]] \
  || fail "the private Slurm did not come up: $(tail -3 "$s/log/slurmctld.log" "$s/log/slurmd.log")"
echo "private Slurm up ($(sinfo -V), ports $ctld_port/$slurmd_port)"

# wait_job <job id> <seconds> [<end>]: until Slurm no longer lists it as pending or running;
# then it must have ended as <end> (default: completed with exit code 0).
wait_job() {
  local state
  for _ in $(seq $(( $2 * 2 ))); do
    state=$(squeue -h -j "$1" -o %T 2> /dev/null || true)
    [[ -z "$state" ]] && break
    sleep 0.5
  done
  [[ -z "$state" ]] || fail "job $1 still $state after $2 s"
  state=$(scontrol show job -o "$1" | grep -o -e 'JobState=[A-Z_]*' -e 'ExitCode=[0-9:]*' | xargs)
  [[ "$state" == "${3:-JobState=COMPLETED ExitCode=0:0}" ]] || fail "job $1 ended as: $state"
}
job_ids() {  # <sweep output> -> "array summary"
  echo "$(sed -n 's/^\[sweep\] array job \([0-9]*\):.*/\1/p' "$1")" \
       "$(sed -n 's/^\[sweep\] summary job \([0-9]*\):.*/\1/p' "$1")"
}

# The tiny sweep for real: two seeds, one (faked) GPU each; the summary job waits for both.
t0=$(date +%s)
bash "$sweep" --slurm --config tiny.yaml --seeds "3 4" --out real --qfae "$qfae" \
  --gpus-per-task 1 -- "${sets[@]}" > real.out
read -r array_job summary_job < <(job_ids real.out)
[[ -n "$array_job" && -n "$summary_job" ]] || fail "no job ids in: $(cat real.out)"
scontrol show job "$summary_job" | grep -q "Dependency=afterany:${array_job}_\*" \
  || fail "summary job $summary_job does not depend on afterany:$array_job"
wait_job "$summary_job" 300
wait_job "${array_job}_0" 1 && wait_job "${array_job}_1" 1
for seed in 3 4; do
  [[ "$(cat "real/logs/train-tiny-seed$seed.rc")" == 0 ]] || fail "seed $seed: no exit code 0"
done
check_mean real/summary tiny 3 4
echo "real Slurm: array job $array_job and summary job $summary_job in $(( $(date +%s) - t0 )) s"

# Two GPUs per task, with the real qfae: srun starts two ranks, which train data-parallel on the
# CPU (Gloo; the GPUs are fake) and log the same per-step losses as one process; only rank 0
# writes a run folder. A second config's runs fail in both ranks (its global batch of 3 does not
# divide by the 2 ranks, which qfae's message counts): the summary job runs all the same
# (afterany), summarizes the first config's two seeds (eval writes summary.csv only for several
# runs) and fails, naming the failed ones. The sweep's train command has -q, so qfae's
# "[dist] rank 0 of 2 (slurm): joined" line is not in the log: a wrapper writes the variables
# each rank reads, then execs qfae.
# The batch script gives the ranks this machine's name as MASTER_ADDR. Gloo binds the address
# that name resolves to (127.0.0.1 here, or the machine's own); GLOO_SOCKET_IFNAME=lo would be
# needed only where it resolves to an address the machine does not have.
getent hosts "$host" > /dev/null \
  || fail "$host (this machine's name, the ranks' MASTER_ADDR) does not resolve: they cannot meet"
export QFAE_STUB_CALLS="$tmp/calls-multi"
mkdir -p "$QFAE_STUB_CALLS"
vars='SLURM_(PROCID|LOCALID|NTASKS|STEP_ID|STEP_NUM_TASKS|STEP_TASKS_PER_NODE)|MASTER_(ADDR|PORT)'
cat > "$tmp/bin/qfae-env" <<EOF
#!/usr/bin/env bash
env | grep -E '^($vars)=' | sort \\
  > "\$QFAE_STUB_CALLS/\$1-\${SLURM_ARRAY_TASK_ID:-x}-\${SLURM_PROCID:-x}.env"
exec $(printf %q "$qfae") "\$@"
EOF
chmod +x "$tmp/bin/qfae-env"
dp_sets=(--set train.log_every=1)  # the tiny config, its batch size from the config files
for i in "${!sets[@]}"; do
  [[ "${sets[i]}" == train.batch_size=* || "${sets[i+1]-}" == train.batch_size=* ]] \
    || dp_sets+=("${sets[i]}")
done
printf 'name: dp\ntrain: {batch_size: 4}\n' > dp.yaml
printf 'name: odd\ntrain: {batch_size: 3}\n' > odd.yaml
t0=$(date +%s)
bash "$sweep" --slurm --config dp.yaml --config odd.yaml --seeds "5 6" --out multi \
  --qfae bin/qfae-env --gpus-per-task 2 --device cpu -- "${dp_sets[@]}" > multi.out
read -r array_job summary_job < <(job_ids multi.out)
[[ -n "$array_job" && -n "$summary_job" ]] || fail "no job ids in: $(cat multi.out)"
# One process, the same config and seed, while Slurm runs the jobs.
"$qfae" train --config dp.yaml --seed 5 -o one --set name=dp-seed5 -q --device cpu \
  "${dp_sets[@]}" > one.log 2>&1 || fail "one process: $(cat one.log)"
wait_job "$summary_job" 240 "JobState=FAILED ExitCode=1:0"
wait_job "${array_job}_0" 1 && wait_job "${array_job}_1" 1
wait_job "${array_job}_2" 1 "JobState=FAILED ExitCode=2:0"
wait_job "${array_job}_3" 1 "JobState=FAILED ExitCode=2:0"
took=$(( $(date +%s) - t0 ))
# Both ranks of dp-seed5 (array task 0) read the step's Slurm variables and one address.
task_job=$(scontrol show job "${array_job}_0" | sed -n 's/^JobId=\([0-9]*\) .*/\1/p')
for rank in 0 1; do
  for line in "SLURM_PROCID=$rank" "SLURM_LOCALID=$rank" "SLURM_STEP_NUM_TASKS=2" \
              "SLURM_STEP_TASKS_PER_NODE=2" "MASTER_ADDR=$host" \
              "MASTER_PORT=$((12000 + task_job % 20000))"; do
    has "$QFAE_STUB_CALLS/train-0-$rank.env" "$line"
  done
done
odd_error="qfae: error: train.batch_size: 3 is the global batch and must divide by the 2 ranks"
odd_error+=" of this job (slurm)"
for seed in 5 6; do
  [[ "$(cat "multi/logs/train-dp-seed$seed.rc")" == 0 ]] || fail "dp-seed$seed: no exit code 0"
  [[ ! -s "multi/logs/train-dp-seed$seed.log" ]] \
    || fail "dp-seed$seed said (with -q): $(cat "multi/logs/train-dp-seed$seed.log")"
  runs=$(ls "multi/runs/dp-seed$seed")
  [[ "$(grep -c '^2' <<< "$runs")" == 1 ]] || fail "dp-seed$seed: not one run folder: $runs"
  # Both ranks say that the batch does not divide by 2; srun ends the step with exit code 2.
  log="multi/logs/train-odd-seed$seed.log"
  [[ "$(cat "multi/logs/train-odd-seed$seed.rc")" == 2 ]] || fail "odd-seed$seed: no exit code 2"
  n=$(grep -cxF "$odd_error" "$log" || true)
  [[ $n == 2 ]] || fail "odd-seed$seed: not 2 ranks but $n said the batch does not divide:" \
                       "$(cat "$log")"
  grep -q "odd-seed$seed failed" "multi/slurm/logs/summary-$summary_job.out" \
    || fail "the summary job's output does not name odd-seed$seed"
done
# Rank 1 wrote nothing; the failed runs left no folder.
[[ "$(ls multi/runs | xargs)" == "dp-seed5 dp-seed6" ]] || fail "multi/runs holds: $(ls multi/runs)"
python3 "$root/tests/scripts/compare_runs.py" "$(readlink -f one/dp-seed5/latest)" \
  "$(readlink -f multi/runs/dp-seed5/latest)" --steps 8 --loss-rtol 1e-5 \
  || fail "dp-seed5: the two ranks' losses are not those of one process"
check_mean multi/summary dp 5 6
echo "real Slurm, 2 GPUs per task, the real qfae on the CPU: ranks 0 and 1 of job $task_job at" \
     "$host:$((12000 + task_job % 20000)); 2 failed runs: summary still ran and named them;" \
     "$took s"
echo "sweep --slurm: script checks and real-Slurm part passed"
