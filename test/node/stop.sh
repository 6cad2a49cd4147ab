#!/usr/bin/env bash
# Stop the test node: cancel its jobs, stop slurmd, slurmctld and munged, end the namespace.
# The cache (rootfs and images) stays. Idempotent.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
node_stop
