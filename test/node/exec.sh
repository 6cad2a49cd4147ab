#!/usr/bin/env bash
# Run a command inside the running test node, as the test user (default) or as root.
#   test/node/exec.sh [--root] -- CMD [ARG...]
# The user gets a login-like environment (HOME, USER, PATH=/usr/local/bin:/usr/bin:/bin) and
# starts in its home directory. Stdin, stdout, stderr and the exit status pass through.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  printf 'usage: %s [--root] -- CMD [ARG...]\n' "$0" >&2
  exit 2
}

as_root=false
while (($# > 0)); do
  case $1 in
    --root) as_root=true ;;
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
else
  node_exec_user "$@" || rc=$?
fi
exit "$rc"
