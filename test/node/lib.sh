# shellcheck shell=bash
# shellcheck disable=SC2034 # the names defined here are used by the scripts that source this
# Shared by the test-node scripts (build, start, exec, status, stop, smoke).
# Sourced, never run: it only defines names and functions.

NODE_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE_LIB="$NODE_SCRIPTS_DIR/lib.sh"

# The cache keeps one directory per recipe hash, so CI runs on the same machine reuse it.
NODE_CACHE_ROOT=${OOD_JUPYTER_NODE_CACHE:-/var/cache/ood-jupyter-node}
# Host-side state of a running node: the namespace holder's pid and the rootfs it runs on.
NODE_STATE_DIR=/run/ood-jupyter-node
NODE_PID_FILE="$NODE_STATE_DIR/holder.pid"
NODE_ROOTFS_FILE="$NODE_STATE_DIR/rootfs"
NODE_HOLDER_LOG="$NODE_STATE_DIR/holder.log"

# The non-root user that submits jobs (root's apptainer fails here: no CAP_SYS_RESOURCE).
NODE_USER=researcher
NODE_UID=1234
NODE_HOME=/home/researcher
# The neighbour: a second researcher in the same lab group, with the lab's shared project directory
# (setgid, group-writable). The security tests attack the first researcher's sessions as this one.
NODE_NEIGHBOUR=neighbour
NODE_NEIGHBOUR_UID=1235
NODE_LAB_GROUP=lab
NODE_LAB_GID=1300
NODE_LAB_DIR=/project/lab
NODE_PATH=/usr/local/bin:/usr/bin:/bin

# Paths as seen inside the node.
NODE_IMAGES_DIR=/opt/images
NODE_IMAGES=(jupyterlab python3-only jupyter-server-1)
# Site overlays (JupyterLab + ipykernel per Python version), one directory each.
NODE_OVERLAYS_DIR=/opt/ood-jupyter/overlays
NODE_PARTITIONS=(gpu cpu)

# Package lists: one file per root filesystem, one package a line; part of the recipe hash.
NODE_PACKAGES_DIR="$NODE_SCRIPTS_DIR/packages"

log() {
  printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "run this as root (it mounts, pivots and starts daemons)"
}

# Seconds since the epoch with millisecond precision, for timings.
now() {
  date +%s.%N
}

# elapsed START -> "12.3"
elapsed() {
  awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# elapsed_s START -> whole seconds, for comparisons
elapsed_s() {
  awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%d", b - a }'
}

# Hash of everything that decides what build.sh produces: the script itself and the package lists.
node_recipe_hash() {
  cat "$NODE_SCRIPTS_DIR/build.sh" "$NODE_PACKAGES_DIR"/*.txt | sha256sum | cut -c1-16
}

node_cache_dir() {
  printf '%s/%s\n' "$NODE_CACHE_ROOT" "$(node_recipe_hash)"
}

# The Debian release an image is built from: a "# suite: NAME" line in its package list, else trixie.
node_image_suite() {
  sed -nE 's/^#[[:space:]]*suite:[[:space:]]*([a-z]+).*/\1/p' "$NODE_PACKAGES_DIR/$1.txt" | head -n1 | grep . || printf 'trixie\n'
}

# Packages of one list, comma-separated for mmdebstrap --include.
node_package_list() {
  grep -vE '^\s*(#|$)' "$NODE_PACKAGES_DIR/$1.txt" | paste -sd, -
}

# The rootfs a running node uses, else the one the current recipe builds.
node_rootfs() {
  if [[ -s $NODE_ROOTFS_FILE ]]; then
    cat "$NODE_ROOTFS_FILE"
  else
    printf '%s/rootfs\n' "$(node_cache_dir)"
  fi
}

# Pid of the process holding the node's mount namespace, if it is alive and really in another
# namespace (a stale pid file after a reboot may name an unrelated process).
node_pid() {
  local pid
  [[ -s $NODE_PID_FILE ]] || return 1
  pid=$(<"$NODE_PID_FILE")
  [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || return 1
  [[ $(readlink "/proc/$pid/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] || return 1
  printf '%s\n' "$pid"
}

# Install host packages for commands that are missing: need_host_cmds CMD:PACKAGE ...
need_host_cmds() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing host packages: ${missing[*]}"
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

# Run a command inside the running node as root, from /.
node_exec_root() {
  local pid
  pid=$(node_pid) || die "the node is not running (test/node/start.sh)"
  # shellcheck disable=SC2016 # "$@" is the inner shell's
  nsenter -t "$pid" -m -- /usr/bin/env -i PATH="$NODE_PATH:/usr/sbin:/sbin" HOME=/root USER=root \
    LOGNAME=root LANG=C.UTF-8 /bin/sh -c 'cd / && exec "$@"' sh "$@"
}

# Run a command inside the running node as the test user, in a login-like environment.
node_exec_user() {
  node_exec_as "$NODE_USER" "$NODE_UID" "$NODE_HOME" "$@"
}

# node_exec_as USER UID HOME CMD...: run CMD inside the running node as USER (with their groups), in
# a login-like environment, in HOME.
node_exec_as() {
  local pid user=$1 uid=$2 home=$3
  shift 3
  pid=$(node_pid) || die "the node is not running (test/node/start.sh)"
  # shellcheck disable=SC2016 # "$HOME" and "$@" are the inner shell's
  nsenter -t "$pid" -m -- /usr/bin/env -i PATH="$NODE_PATH" HOME="$home" USER="$user" \
    LOGNAME="$user" SHELL=/bin/bash LANG=C.UTF-8 \
    /usr/bin/setpriv --reuid="$uid" --regid="$uid" --init-groups -- \
    /bin/sh -c 'cd "$HOME" && exec "$@"' sh "$@"
}

# ---------------------------------------------------------------------------------------------
# Entering a root filesystem. Runs inside `unshare -m` (a private mount namespace), so nothing
# here is visible on the host and everything disappears when the last process in it exits.
# Usage (through NODE_ENTER): ROOTFS BIND_SRC BIND_DST -- CMD...   (BIND_SRC may be "")

node_inner() {
  local root=$1 bind_src=$2 bind_dst=$3
  shift 4
  [[ -d $root/proc && -d $root/dev ]] || { echo "not a root filesystem: $root" >&2; exit 1; }
  # The rootfs must be a mount point of its own for pivot_root.
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys" 2>/dev/null || mount --rbind /sys "$root/sys"
  node_make_dev "$root/dev"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
  if [[ -n $bind_src ]]; then
    mkdir -p "$root$bind_dst"
    mount --bind "$bind_src" "$root$bind_dst"
  fi
  # start.sh waits for this file: the mounts are in place.
  if [[ -n ${NODE_PID_OUT:-} ]]; then
    printf '%s\n' "$$" >"$NODE_PID_OUT"
  fi
  # pivot_root, not chroot: apptainer needs a real mount root ("Failed to set mount propagation"
  # under chroot). pivot_root . . stacks the old root under the new one; umount -l drops it.
  cd "$root" || exit 1
  pivot_root . .
  umount -l .
  cd /
  exec "$@"
}

# A private /dev: only what jobs need, plus fuse (squashfuse mounts SIFs for the non-root user;
# without it apptainer unpacks every image to a temporary sandbox) and two fake GPUs.
node_make_dev() {
  local dev=$1
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$dev"
  mknod -m 0666 "$dev/null" c 1 3
  mknod -m 0666 "$dev/zero" c 1 5
  mknod -m 0666 "$dev/full" c 1 7
  mknod -m 0666 "$dev/random" c 1 8
  mknod -m 0666 "$dev/urandom" c 1 9
  mknod -m 0666 "$dev/tty" c 5 0
  mknod -m 0666 "$dev/fuse" c 10 229
  # Fake GPUs: Slurm's gres.conf needs device files; no driver stands behind them.
  mknod -m 0666 "$dev/nvidia0" c 195 0
  mknod -m 0666 "$dev/nvidia1" c 195 1
  mkdir "$dev/pts" "$dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$dev/pts"
  ln -s pts/ptmx "$dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"
  ln -s /proc/self/fd "$dev/fd"
  ln -s /proc/self/fd/0 "$dev/stdin"
  ln -s /proc/self/fd/1 "$dev/stdout"
  ln -s /proc/self/fd/2 "$dev/stderr"
}

# NODE_ENTER ROOTFS BIND_SRC BIND_DST -- CMD...: run CMD with ROOTFS as its root, in a new
# private mount namespace. An array, not a function, so start.sh can run it under setsid; the
# process keeps one pid through unshare's, bash's and node_inner's exec.
# shellcheck disable=SC2016 # "$1" and "$@" are the inner shell's
NODE_ENTER=(unshare -m --propagation private -- /bin/bash -c
  'set -euo pipefail; source "$1"; shift; node_inner "$@"' node-enter "$NODE_LIB")

# ---------------------------------------------------------------------------------------------
# Stopping.

# Pids of everything running in the node: processes in the holder's mount namespace and all their
# descendants (apptainer's processes live in namespaces of their own), holder excluded.
node_ns_pids() {
  local holder=$1 ns p seeds=
  ns=$(readlink "/proc/$holder/ns/mnt")
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if [[ $p != "$holder" && $(readlink "/proc/$p/ns/mnt" 2>/dev/null) == "$ns" ]]; then
      seeds+=" $p"
    fi
  done
  [[ -n $seeds ]] || return 0
  ps -e -o pid=,ppid= | awk -v seeds="$seeds" '
    BEGIN { n = split(seeds, s, " "); for (i = 1; i <= n; i++) want[s[i]] = 1 }
    { parent[$1] = $2 }
    END {
      do { grown = 0; for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; grown = 1 } } while (grown)
      for (p in want) print p
    }'
}

# Cancel the jobs, stop the daemons, end the holder; the namespace and its mounts go with it.
node_stop() {
  local pid pids jobs i
  if ! pid=$(node_pid); then
    log "not running"
    rm -f "$NODE_PID_FILE" "$NODE_ROOTFS_FILE"
    return 0
  fi
  # Let Slurm end its jobs itself first (it kills their whole process trees).
  jobs=$(node_exec_root squeue -h -o %A 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    log "cancelling jobs: ${jobs//$'\n'/ }"
    # shellcheck disable=SC2086 # one job id per word
    node_exec_root scancel $jobs || true
    for ((i = 0; i < 50; i++)); do
      [[ -z $(node_exec_root squeue -h -o %A 2>/dev/null || true) ]] && break
      sleep 0.2
    done
  fi
  pids=$(node_ns_pids "$pid")
  if [[ -n $pids ]]; then
    log "stopping $(wc -w <<<"$pids") processes in the node (slurmd, slurmctld, munged, ...)"
    # shellcheck disable=SC2086 # one pid per word
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pids=$(node_ns_pids "$pid")
      [[ -z $pids ]] && break
      sleep 0.2
    done
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
  fi
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [[ -d /proc/$pid ]] || break
    sleep 0.1
  done
  rm -f "$NODE_PID_FILE" "$NODE_ROOTFS_FILE"
  log "stopped (holder $pid)"
}
