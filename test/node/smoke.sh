#!/usr/bin/env bash
# Quick proof that the running test node works, end to end, as the test user:
#  1. a GPU job runs python3 in the JupyterLab image under `apptainer exec --nv` and reports
#     CUDA_VISIBLE_DEVICES, SLURM_JOB_ID and /.singularity.d;
#  2. sbatch refuses what the gpu partition cannot give (5 GPUs; more than its 8 h MaxTime);
#  3. JupyterLab started in the image by a job answers curl on the HOST's 127.0.0.1, and
#     scancel ends it.
# Exits non-zero at the first thing that does not hold.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE=$NODE_IMAGES_DIR/jupyterlab.sif
# Job outputs land here, in the test user's home inside the node.
SMOKE_DIR=smoke

user() {
  node_exec_user "$@"
}

job_state() {
  user squeue -h -j "$1" -o %T 2>/dev/null || true
}

# wait_job JOBID SECONDS: wait until the job has left the queue; sets RUNNING_AT (when it was
# first seen running) and DONE_AT.
wait_job() {
  local job=$1 seconds=$2 start state
  start=$(now)
  RUNNING_AT=
  while :; do
    state=$(job_state "$job")
    [[ $state == RUNNING && -z $RUNNING_AT ]] && RUNNING_AT=$(now)
    [[ -z $state || $state == COMPLETED || $state == FAILED ]] && break
    (($(elapsed_s "$start") < seconds)) || die "job $job still $state after $seconds s"
    sleep 0.1
  done
  DONE_AT=$(now)
}

# span FROM TO: seconds between two now() stamps.
span() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    port_open "$port" || break
  done
  printf '%s\n' "$port"
}

gpu_job() {
  local code wrap job t0 out
  log "1. GPU job: apptainer exec --nv $IMAGE python3"
  # One line, no single quotes: --wrap's script is run by /bin/sh.
  code='import os, jupyterlab, ipykernel; env = os.environ.get'
  code+='; print("CUDA_VISIBLE_DEVICES=" + env("CUDA_VISIBLE_DEVICES", "(unset)"))'
  code+='; print("SLURM_JOB_ID=" + env("SLURM_JOB_ID", "(unset)"))'
  code+='; print("/.singularity.d exists:", os.path.isdir("/.singularity.d"))'
  code+='; print("APPTAINER_CONTAINER=" + env("APPTAINER_CONTAINER", "(unset)"))'
  code+='; print("jupyterlab", jupyterlab.__version__, "ipykernel", ipykernel.__version__)'
  wrap="apptainer exec --nv $IMAGE python3 -c '$code'"
  t0=$(now)
  job=$(user sbatch --parsable -p gpu --gres=gpu:1 -o "$SMOKE_DIR/gpu-%j.out" --wrap "$wrap")
  wait_job "$job" 120
  out=$(user cat "$SMOKE_DIR/gpu-$job.out")
  printf '%s\n' "$out" | sed 's/^/    | /' >&2
  user scontrol -o show job "$job" | grep -q 'JobState=COMPLETED .*ExitCode=0:0' ||
    die "job $job did not complete cleanly: $(user scontrol -o show job "$job" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*' | tr '\n' ' ')"
  grep -qx "SLURM_JOB_ID=$job" <<<"$out" || die "the job did not see SLURM_JOB_ID=$job"
  grep -qE '^CUDA_VISIBLE_DEVICES=[01]$' <<<"$out" || die "the job did not get one GPU in CUDA_VISIBLE_DEVICES"
  grep -qx '/.singularity.d exists: True' <<<"$out" || die "the job did not run inside the container"
  log "   job $job: sbatch -> running $(span "$t0" "${RUNNING_AT:-$DONE_AT}") s -> done $(span "$t0" "$DONE_AT") s"
}

# refused DESCRIPTION SBATCH-ARGS...: sbatch must fail at submission.
refused() {
  local what=$1 err
  shift
  if err=$(user sbatch --parsable "$@" --wrap true 2>&1); then
    user scancel "$err" || true
    die "sbatch accepted $what (job $err)"
  fi
  log "   refused $what: $err"
}

over_ask() {
  log "2. requests the gpu partition cannot give are refused by sbatch"
  refused "5 GPUs" -p gpu --gres=gpu:5
  refused "9 h in gpu (MaxTime 8 h)" -p gpu -t 9:00:00
}

jupyter_job() {
  local port token job t0 answered body i
  port=$(free_port)
  token=smoke-$RANDOM$RANDOM
  log "3. JupyterLab job on 127.0.0.1:$port, reached from the host"
  t0=$(now)
  job=$(user sbatch --parsable -p gpu --gres=gpu:1 -o "$SMOKE_DIR/jupyter-%j.out" --wrap \
    "apptainer exec --nv $IMAGE python3 -m jupyterlab --no-browser --ip=127.0.0.1 --port=$port --IdentityProvider.token=$token")
  for ((i = 0; i < 600; i++)); do
    body=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/api/status" -H "Authorization: token $token" 2>/dev/null) && break
    if [[ -z $(job_state "$job") ]]; then
      user cat "$SMOKE_DIR/jupyter-$job.out" >&2 || true
      die "the JupyterLab job $job ended before answering"
    fi
    sleep 0.1
  done
  [[ -n $body ]] || { user scancel "$job"; die "JupyterLab did not answer on 127.0.0.1:$port within 60 s"; }
  answered=$(now)
  log "   job $job answered from the host $(span "$t0" "$answered") s after sbatch: GET /api/status -> $body"
  # Jupyter's own protection is on: without the token the same request is refused.
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/status") == 403 ]] ||
    die "JupyterLab answered /api/status without the token"
  log "   without the token: 403"
  t0=$(now)
  user scancel "$job"
  for ((i = 0; i < 200; i++)); do
    port_open "$port" || break
    sleep 0.1
  done
  port_open "$port" && die "JupyterLab still listens on $port after scancel"
  log "   scancel $job: port $port closed after $(elapsed "$t0") s"
}

main() {
  local t
  require_root
  node_pid >/dev/null || die "the node is not running (test/node/start.sh)"
  need_host_cmds curl:curl
  t=$(now)
  user sh -c "rm -rf $SMOKE_DIR && mkdir $SMOKE_DIR"
  gpu_job
  over_ask
  jupyter_job
  log "smoke passed in $(elapsed "$t") s (job outputs in $NODE_HOME/$SMOKE_DIR inside the node)"
}

main "$@"
