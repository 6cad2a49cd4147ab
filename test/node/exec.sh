#!/usr/bin/env bash
# Run a command inside the running test node, as the test user (default), the neighbour (a second
# researcher of the same lab) or root.
#   test/node/exec.sh [--root | --neighbour] -- CMD [ARG...]
# The user gets a login-like environment (HOME, USER, PATH=/usr/local/bin:/usr/bin:/bin) and
# starts in its home directory. Stdin, stdout, stderr and the exit status pass through.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  printf 'usage: %s [--root | --neighbour] -- CMD [ARG...]\n' "$0" >&2
  exit 2
}

as_root=false as_neighbour=false
while (($# > 0)); do
  case $1 in
    --root) as_root=true ;;
    --neighbour) as_neighbour=true ;;
    --) shift; break ;;
    *) usage ;;
  esac
  shift
done
(($# > 0)) || usage
require_root

rc=0
if $as_root; then
  node_exec_root "$@" || rc=$?
elif $as_neighbour; then
  node_exec_as "$NODE_NEIGHBOUR" "$NODE_NEIGHBOUR_UID" "/home/$NODE_NEIGHBOUR" "$@" || rc=$?
else
  node_exec_user "$@" || rc=$?
fi
exit "$rc"
