#!/usr/bin/env bash
# Is the test node running, and where are its parts?
#   test/node/status.sh          human-readable, with sinfo when running
#   test/node/status.sh --json   one JSON object (image paths as seen inside the node)
# Exit status: 0 running, 3 not running.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A JSON string; the values here are paths and names, but quote them properly anyway.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# A JSON array of strings.
json_strs() {
  local sep='' s
  printf '['
  for s in "$@"; do
    printf '%s%s' "$sep" "$(json_str "$s")"
    sep=,
  done
  printf ']'
}

print_json() {
  local running=$1 pid=$2 rootfs=$3
  printf '{"running":%s,"pid":%s,"rootfs":%s,"user":%s,"uid":%s,"home":%s,' \
    "$running" "${pid:-null}" "$(json_str "$rootfs")" "$(json_str "$NODE_USER")" "$NODE_UID" \
    "$(json_str "$NODE_HOME")"
  printf '"neighbour":{"user":%s,"uid":%s,"home":%s},"lab":{"group":%s,"gid":%s,"dir":%s},' \
    "$(json_str "$NODE_NEIGHBOUR")" "$NODE_NEIGHBOUR_UID" "$(json_str "/home/$NODE_NEIGHBOUR")" \
    "$(json_str "$NODE_LAB_GROUP")" "$NODE_LAB_GID" "$(json_str "$NODE_LAB_DIR")"
  printf '"images":{"jupyterlab":%s,"python3Only":%s,"jupyterServer1":%s},"partitions":%s}\n' \
    "$(json_str "$NODE_IMAGES_DIR/jupyterlab.sif")" "$(json_str "$NODE_IMAGES_DIR/python3-only.sif")" \
    "$(json_str "$NODE_IMAGES_DIR/jupyter-server-1.sif")" \
    "$(json_strs "${NODE_PARTITIONS[@]}")"
}

print_human() {
  local running=$1 pid=$2 rootfs=$3 name
  if [[ $running == true ]]; then
    printf 'test node: running (namespace holder pid %s)\n' "$pid"
  else
    printf 'test node: not running (test/node/start.sh starts it)\n'
  fi
  printf 'rootfs:    %s%s\n' "$rootfs" "$([[ -d $rootfs ]] || printf ' (not built: test/node/build.sh)')"
  printf 'user:      %s (uid %s, home %s inside the node)\n' "$NODE_USER" "$NODE_UID" "$NODE_HOME"
  for name in "${NODE_IMAGES[@]}"; do
    printf 'image:     %s/%s.sif\n' "$NODE_IMAGES_DIR" "$name"
  done
  if [[ $running == true ]]; then
    printf '\n'
    node_exec_root sinfo || true
    printf '\n'
    node_exec_root squeue || true
  fi
}

json=false
case ${1:-} in
  --json) json=true ;;
  '') ;;
  *) printf 'usage: %s [--json]\n' "$0" >&2; exit 2 ;;
esac
require_root

running=false
pid=
if pid=$(node_pid); then
  running=true
fi
if $json; then
  print_json "$running" "$pid" "$(node_rootfs)"
else
  print_human "$running" "$pid" "$(node_rootfs)"
fi
[[ $running == true ]] || exit 3
