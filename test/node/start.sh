#!/usr/bin/env bash
# Start the test node: a private mount namespace rooted in the built rootfs, with munged,
# slurmctld and slurmd running in it. The node shares the host's network and pid namespaces,
# so a JupyterLab listening inside answers on the host's 127.0.0.1.
# Idempotent: if the node is already running, says so and exits 0.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Written on every start, so a config change needs no rebuild.
write_config() {
  local rootfs=$1 host
  host=$(hostname)
  # OOD's job script does host=$(hostname) and the proxy URL uses it: it must resolve to here.
  {
    printf '127.0.0.1\tlocalhost\n'
    [[ $host == localhost ]] || printf '127.0.0.1\t%s\n' "$host"
    printf '::1\t\tlocalhost ip6-localhost ip6-loopback\n'
  } >"$rootfs/etc/hosts"

  mkdir -p "$rootfs/etc/slurm"
  cat >"$rootfs/etc/slurm/slurm.conf" <<'EOF'
# Written by test/node/start.sh: one node, two fake GPUs, partitions gpu and cpu.
ClusterName=ood-test
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
# State under /run (a tmpfs in the node): every start begins with no jobs, job ids from 1.
StateSaveLocation=/run/slurm/ctld
SlurmdSpoolDir=/run/slurm/d
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups in this sandbox: track processes by parentage, bind nothing, account nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
# Cores are counted, and up to ten jobs share one (OverSubscribe=FORCE:10 on both partitions: jobs of
# a partition that does not oversubscribe would keep the other's waiting), so that ten sessions of one
# researcher can run at once on this two-core machine. GPUs stay one job's each. Memory is checked
# per job against RealMemory but not counted across jobs, for the same reason.
SelectTypeParameters=CR_Core
DefMemPerCPU=1000
GresTypes=gpu
# Refuse at sbatch what a partition cannot run; without it such a job is queued and waits forever.
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
NodeName=localhost CPUs=2 RealMemory=8000 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes=localhost MaxTime=8:00:00 OverSubscribe=FORCE:10 State=UP
PartitionName=cpu Nodes=localhost Default=YES OverSubscribe=FORCE:10 State=UP
EOF
  # The site's `module` command, defined for bash in profile.d as Lmod and Environment Modules do
  # (and exported for bash logins). A researcher whose login shell is tcsh has no such function in
  # a bash job: the app must load it itself. `module load NAME` records NAME in LOADEDMODULES.
  mkdir -p "$rootfs/etc/profile.d"
  cat >"$rootfs/etc/profile.d/site-modules.sh" <<'MODULES'
# Written by test/node/start.sh: a stand-in for the site's module system (bash only).
module() {
  case $1 in
    load) shift; local m; for m in "$@"; do export LOADEDMODULES="${LOADEDMODULES:+$LOADEDMODULES:}$m"; done ;;
    *) echo "module: unknown sub-command $1" >&2; return 1 ;;
  esac
}
export -f module
MODULES

  # A STUB of the NVIDIA driver's nvidia-smi: this machine has no GPU, and the app ends a GPU session
  # on a node without a driver (no /proc/driver/nvidia/version, no nvidia-smi). The end-to-end suite
  # hides it to test that case (test/e2e/faults.test.ts); on a machine with a GPU the real driver
  # answers instead (test/node/README.md, the device check).
  mkdir -p "$rootfs/usr/local/bin"
  cat >"$rootfs/usr/local/bin/nvidia-smi" <<'SMI'
#!/bin/sh
# STUB written by test/node/start.sh: the two fake GPUs of gres.conf, for `nvidia-smi -L`.
case $1 in
  -L) printf 'GPU 0: Test node stub GPU (UUID: GPU-00000000-0000-0000-0000-000000000000)\nGPU 1: Test node stub GPU (UUID: GPU-00000000-0000-0000-0000-000000000001)\n' ;;
  *) echo 'nvidia-smi: a stub of the test node (no GPU on this machine)' ;;
esac
SMI
  chmod 0755 "$rootfs/usr/local/bin/nvidia-smi"

  # File-less GPU gres is ignored and the node goes INVAL: point it at the fake device nodes.
  printf 'NodeName=localhost Name=gpu File=/dev/nvidia[0-1]\n' >"$rootfs/etc/slurm/gres.conf"
  # Slurm 26 loads a cgroup plugin even with proctrack/linuxproc and task/none, and slurmd
  # dies on "No filesystem mounted on /sys/fs/cgroup" unless told to leave cgroups alone.
  printf 'CgroupPlugin=disabled\n' >"$rootfs/etc/slurm/cgroup.conf"
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  log "timed out after $seconds s waiting for $what"
  return 1
}

holder_ready() {
  local pid
  pid=$(node_pid) && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]]
}

node_idle() {
  # One line per partition the node is in.
  [[ $(node_exec_root sinfo -h -N -o %T 2>/dev/null | sort -u) == idle ]]
}

# The daemons fork before they fail, so their exit status says nothing: check their pid files.
daemons_alive() {
  local f pid
  for f in /run/munge/munged.pid /run/slurm/slurmctld.pid /run/slurm/slurmd.pid; do
    pid=$(node_exec_root cat "$f" 2>/dev/null) || { log "$f is missing"; return 1; }
    [[ -d /proc/$pid ]] || { log "$f names pid $pid, which is gone"; return 1; }
  done
}

# Idle within SECONDS, failing early if a daemon died (they have written pid files after 5 s).
wait_idle() {
  local seconds=$1 t
  t=$(now)
  until node_idle; do
    if (($(elapsed_s "$t") > 5)) && ! daemons_alive; then
      return 1
    fi
    (($(elapsed_s "$t") < seconds)) || { log "not idle after $seconds s"; return 1; }
    sleep 0.2
  done
}

# Fail loudly: everything the daemons said, then stop what was started.
fail_start() {
  local rootfs=$1 f
  log "the node did not come up; logs follow"
  for f in "$NODE_HOLDER_LOG" "$rootfs/var/log/munge/munged.log" \
    "$rootfs/var/log/slurm/slurmctld.log" "$rootfs/var/log/slurm/slurmd.log"; do
    [[ -s $f ]] || continue
    printf '===== %s (last 40 lines) =====\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
  node_exec_root sinfo -N -l >&2 2>/dev/null || true
  node_stop
  exit 1
}

main() {
  local pid rootfs t name
  require_root
  need_host_cmds unshare:util-linux nsenter:util-linux setsid:util-linux ps:procps
  if pid=$(node_pid); then
    log "already running (pid $pid, rootfs $(node_rootfs))"
    exit 0
  fi
  t=$(now)
  rootfs=$(node_cache_dir)/rootfs
  [[ -d $rootfs ]] || die "no node built for this recipe at $rootfs: run test/node/build.sh first"
  for name in "${NODE_IMAGES[@]}"; do
    [[ -f $rootfs$NODE_IMAGES_DIR/$name.sif ]] || die "image $name.sif missing: run test/node/build.sh"
  done

  write_config "$rootfs"
  mkdir -p "$NODE_STATE_DIR" "$rootfs/var/log/slurm"
  rm -f "$NODE_PID_FILE"
  : >"$rootfs/var/log/slurm/slurmctld.log"
  : >"$rootfs/var/log/slurm/slurmd.log"
  printf '%s\n' "$rootfs" >"$NODE_ROOTFS_FILE"
  log "entering $rootfs"
  # The holder: a process that only sleeps, keeping the namespace (and its mounts) alive.
  NODE_PID_OUT=$NODE_PID_FILE setsid "${NODE_ENTER[@]}" "$rootfs" "" "" -- /bin/sleep infinity \
    </dev/null >"$NODE_HOLDER_LOG" 2>&1 &
  disown
  wait_for 10 "the namespace holder" holder_ready || fail_start "$rootfs"
  pid=$(node_pid)

  # Daemon output goes to the holder log on the host; they log to files of their own too.
  node_exec_root /bin/sh -c "
    getent group $NODE_USER >/dev/null || groupadd --gid $NODE_UID $NODE_USER
    id -u $NODE_USER >/dev/null 2>&1 || useradd --uid $NODE_UID --gid $NODE_UID \
      --create-home --home-dir $NODE_HOME --shell /bin/bash $NODE_USER
    # A second researcher of the same lab (the neighbour the security tests attack with), the lab's
    # group, and its project directory as centers set them up: setgid, writable by the group.
    getent group $NODE_NEIGHBOUR >/dev/null || groupadd --gid $NODE_NEIGHBOUR_UID $NODE_NEIGHBOUR
    id -u $NODE_NEIGHBOUR >/dev/null 2>&1 || useradd --uid $NODE_NEIGHBOUR_UID --gid $NODE_NEIGHBOUR_UID \
      --create-home --home-dir /home/$NODE_NEIGHBOUR --shell /bin/bash $NODE_NEIGHBOUR
    getent group $NODE_LAB_GROUP >/dev/null || groupadd --gid $NODE_LAB_GID $NODE_LAB_GROUP
    usermod -a -G $NODE_LAB_GROUP $NODE_USER && usermod -a -G $NODE_LAB_GROUP $NODE_NEIGHBOUR
    install -d -o root -g root -m 0755 /project
    install -d -o root -g $NODE_LAB_GROUP -m 2770 $NODE_LAB_DIR
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -m 0755 /run/slurm /run/slurm/ctld /run/slurm/d /run/lock
    # munged refuses a key it does not own.
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  " >>"$NODE_HOLDER_LOG" 2>&1 || fail_start "$rootfs"
  node_exec_root setpriv --reuid=munge --regid=munge --clear-groups -- munged \
    </dev/null >>"$NODE_HOLDER_LOG" 2>&1 || fail_start "$rootfs"
  node_exec_root slurmctld </dev/null >>"$NODE_HOLDER_LOG" 2>&1 || fail_start "$rootfs"
  # -N: the node's name in slurm.conf is localhost, whatever the host is called.
  node_exec_root slurmd -N localhost </dev/null >>"$NODE_HOLDER_LOG" 2>&1 || fail_start "$rootfs"
  wait_idle 60 || fail_start "$rootfs"

  log "running in $(elapsed "$t") s: pid $pid, user $NODE_USER ($NODE_UID), host name $(hostname) -> 127.0.0.1"
  node_exec_root sinfo >&2
}

main "$@"
