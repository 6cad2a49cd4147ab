# shellcheck shell=bash
# The sourced files are the session's own (SC1090/SC1091) and set password
# and the conn_params names (SC2154); the helpers are only called indirectly
# or from other processes, which shellcheck cannot see (SC2317).
# shellcheck disable=SC1090,SC1091,SC2154,SC2317
#
# The body of the job script Open OnDemand submits for a batch-connect app with
# `batch_connect: template: basic` — written for this test harness from the
# behaviour of ood_core's OodCore::BatchConnect::Template (v0.29.0 as shipped
# with OOD 3.1.16; unchanged on main), not copied from it.
#
# basic-template.ts fills the placeholders (upper-case names between two @
# signs) the way ood_core interpolates
# its Ruby values: verbatim, unquoted where ood_core leaves them unquoted (so a
# staged root with a space breaks `cd` here exactly as it would under OOD).
#
# What a session's scripts can rely on, as under OOD:
#   - cwd is the staged root; `host` is set (and exported) before before.sh;
#     `port` is exported, so once before.sh sets it, script.sh sees it.
#   - before.sh and after.sh are *sourced* into this shell; script.sh is forked.
#   - find_port, port_used, wait_until_port_used, create_passwd, random_number
#     and source_helpers are exported functions. The port_used_* strategies are
#     NOT exported: a forked script.sh must call `source_helpers` before using
#     port_used/wait_until_port_used, or each strategy is "command not found"
#     and port_used answers 127 — ood_core behaves the same way.
#   - connection.yml is written (umask 077) only after after.sh returns.

# Like ood_core: no `|| exit` — a failed cd carries on (sbatch -D set the cwd).
# shellcheck disable=SC2164
cd @WORK_DIR@

# ood_core exports these before anything sets them, so later assignments in
# before.sh reach the forked script.sh.
export host
export port

# Write every connection parameter as "name: $name", one per line, through
# `echo -e` — values are not quoted or escaped, just as ood_core does it.
create_yml () {
  echo "Generating connection YAML file..."
  (
    umask 077
    echo -e "@CONN_YML@" > "@CONN_FILE@"
  )
}

# Source clean.sh, then kill the direct children of script.sh and of this
# shell (ood_core uses `pkill -P`: grandchildren are left to Slurm's cgroup).
clean_up () {
  echo "Cleaning up..."
  if [[ -e "@CLEAN_FILE@" ]]; then source "@CLEAN_FILE@"; fi
  if [[ -n "${SCRIPT_PID:-}" ]]; then pkill -P "${SCRIPT_PID}" || :; fi
  pkill -P $$
  exit "${1:-0}"
}

# Defines (and exports) the helpers; exported itself so a forked script can
# call it to get the port_used_* strategies too.
source_helpers () {
  # random_number MIN MAX: one random integer in [MIN..MAX].
  random_number () {
    shuf -i "${1}-${2}" -n 1
  }
  export -f random_number

  # Strategies for port_used, tried in ood_core's order. Each answers 0 (in
  # use), 1 (free) or anything else (cannot tell, try the next one).
  port_used_nc () {
    nc -w 2 "$1" "$2" < /dev/null > /dev/null 2>&1
  }

  # lsof ignores the host: any local socket on that port counts.
  port_used_lsof () {
    lsof -i :"$2" > /dev/null 2>&1
  }

  # bash's /dev/tcp, used only when `strings /bin/bash` shows bash was built
  # with it (binutils' strings is needed for that check, as in ood_core).
  port_used_bash () {
    local built_with_tcp
    built_with_tcp=$(strings /bin/bash 2> /dev/null | grep tcp)
    if [[ "${built_with_tcp}" == "/dev/tcp/*/*" ]]; then
      (: < "/dev/tcp/$1/$2") > /dev/null 2>&1
    else
      return 127
    fi
  }

  port_used_python () {
    python -c "import socket; socket.socket().connect(('$1',$2))" > /dev/null 2>&1
  }

  port_used_python3 () {
    python3 -c "import socket; socket.socket().connect(('$1',$2))" > /dev/null 2>&1
  }

  # port_used [HOST:]PORT — 0 when something listens there, 1 when not,
  # 127 when no strategy could tell. HOST is what precedes the last colon;
  # an empty HOST (or "0", a quirk of ood_core's `expr`) means localhost.
  port_used () {
    local port="${1#*:}"
    local host="localhost"
    if [[ "$1" == *:* ]]; then
      host="${1%:*}"
      if [[ -z "${host}" || "${host}" == "0" ]]; then host="localhost"; fi
    fi
    local strategy status
    for strategy in port_used_nc port_used_lsof port_used_bash port_used_python port_used_python3; do
      "${strategy}" "${host}" "${port}"
      status=$?
      if [[ "${status}" == "0" || "${status}" == "1" ]]; then
        return "${status}"
      fi
    done
    return 127
  }
  export -f port_used

  # find_port [HOST] [MIN] [MAX] — prints a port in [MIN..MAX] (defaults:
  # localhost, @MIN_PORT@, @MAX_PORT@) that port_used does not report in use,
  # trying the shuffled range twice. Note: a port_used that cannot tell (127)
  # counts as free. Returns 1, with a message on stderr, when none is free.
  find_port () {
    local host="${1:-localhost}"
    local min_port="${2:-@MIN_PORT@}"
    local max_port="${3:-@MAX_PORT@}"
    local -a candidates
    mapfile -t candidates < <(shuf -i "${min_port}-${max_port}")
    local pass candidate
    for ((pass = 1; pass <= 2; pass++)); do
      for candidate in "${candidates[@]}"; do
        if port_used "${host}:${candidate}"; then
          continue
        fi
        echo "${candidate}"
        return 0
      done
    done
    echo "error: failed to find available port in range ${min_port}..${max_port}" >&2
    return 1
  }
  export -f find_port

  # wait_until_port_used [HOST:]PORT [SECONDS] — polls every half second for
  # SECONDS (default 30). 0 once in use, 1 on time-out, 127 (with ood_core's
  # two lines on stdout) as soon as port_used cannot tell.
  wait_until_port_used () {
    local target="${1}"
    local seconds="${2:-30}"
    local attempt status
    for ((attempt = 1; attempt <= seconds * 2; attempt++)); do
      port_used "${target}"
      status=$?
      if [[ "${status}" == "0" ]]; then
        return 0
      elif [[ "${status}" == "127" ]]; then
        echo "commands to find port were either not found or inaccessible."
        echo "command options are lsof, nc, bash's /dev/tcp, or python (or python3) with socket lib."
        return 127
      fi
      sleep 0.5
    done
    return 1
  }
  export -f wait_until_port_used

  # create_passwd [LENGTH] — LENGTH (default @PASSWORD_SIZE@) random
  # alphanumerics, no newline. A subshell, so pipefail is off only here.
  create_passwd () (
    set +o pipefail
    tr -cd 'a-zA-Z0-9' < /dev/urandom 2> /dev/null | head -c "${1:-@PASSWORD_SIZE@}"
  )
  export -f create_passwd
}
export -f source_helpers

source_helpers

# Set host of current machine (a site may override this line: set_host)
@SET_HOST@

if [[ -e "@BEFORE_FILE@" ]]; then source "@BEFORE_FILE@"; fi

echo "Script starting..."
@RUN_SCRIPT@ &
SCRIPT_PID=$!

if [[ -e "@AFTER_FILE@" ]]; then source "@AFTER_FILE@"; fi

# The session card turns to "Running" once this file exists.
create_yml

# Wait for script.sh; its failure is the job's failure.
wait "${SCRIPT_PID}" || clean_up 1

clean_up
