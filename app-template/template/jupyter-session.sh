# shellcheck shell=bash
# The msg_* sentences are defined in messages.sh, which every script sources first.
# shellcheck disable=SC2154
# The session's job logic as plain bash functions: sourced by before.sh (in the job's own shell,
# so after.sh has them too) and by script.sh, and included verbatim in the scripts of
# `ood-jupyter batch-script` and `ood-jupyter pull`. Copied into the app as it is: no template engine
# touches this file, and it reads no form value. The values come from settings.sh, the sentences
# from messages.sh. In order:
#   messages and failures, site set-up, the port;
#   the container: runtime arguments, the image, registry pulls and the image cache;
#   the image's Python: the probe and where JupyterLab comes from (image, overlay, per-user install);
#   kernels: the package directory and the researcher's environments;
#   the launch: the environment JupyterLab and batch jobs get;
#   the Jupyter configuration and the start wait.

# Print one of this app's messages (a printf format from messages.sh) as one plain line.
say() {
  local format=$1
  shift
  # shellcheck disable=SC2059 # the format is one of the app's own messages
  printf "${format}\n" "$@"
}

# Where a script that already said why the session failed leaves a note, so after.sh (which sees
# script.sh end) adds no second line. Both scripts source this file in the session directory.
failure_note=${failure_note:-"$PWD/jupyter/failed"}
# Where the session notes when each phase of its start is reached (mark_phase): staff can read
# where a start's time goes, and `npm run bench` times the start from the job's own clock.
phase_file=${phase_file:-"$PWD/jupyter/phases"}
# The directory of this library (the session directory): inspect-python.py is next to it.
session_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# mark_phase NAME: append "NAME SECONDS" (the epoch, to the microsecond) to phase_file, creating
# its directory on first use. A builtin clock where bash has one (5.0+), else date; never fails the job.
mark_phase() {
  local line
  line="$1 ${EPOCHREALTIME:-$(date +%s.%N)}"
  { printf '%s\n' "$line" >>"$phase_file"; } 2>/dev/null ||
    { mkdir -p "${phase_file%/*}" && printf '%s\n' "$line" >>"$phase_file"; } 2>/dev/null
  return 0
}

# fail FORMAT ARGS...: say it, note it, and end the script with status 1.
fail() {
  report_failure "$@"
  exit 1
}

# report_failure FORMAT ARGS...: the one line a broken session prints, noted for after.sh and,
# with the line, for the completed view.
report_failure() {
  say "$@"
  mkdir -p "${failure_note%/*}" && : >"$failure_note"
  # shellcheck disable=SC2059 # the format is one of the app's own messages
  record_end failed "$(printf "$@")"
}

# Why the session ended, for completed.html.erb: jupyter/ended holds a reason (failed, time-limit,
# cancelled, idle, stopped) on its first line and what the researcher should read on the second.
session_end_record=${session_end_record:-"$PWD/jupyter/ended"}

# record_end REASON [DETAIL]: note why the session ends (the first reason noted stays).
record_end() {
  [[ -s $session_end_record && $session_end_record != /dev/null ]] && return 0
  mkdir -p "${session_end_record%/*}" 2>/dev/null
  printf '%s\n%s\n' "$1" "${2:-}" >"$session_end_record" 2>/dev/null
  return 0
}

# ended_by_signal: time-limit when the job has run for its whole time limit (Slurm signals it then),
# else cancelled (scancel, or Delete on the session card). The start and the limit are asked from
# Slurm (a limit changed since the start counts), else taken from the job's environment.
ended_by_signal() {
  local start='' limit='' days=0 a b c seconds=''
  read -r start limit < <(squeue -h -j "${SLURM_JOB_ID:-}" -o '%S %l' 2>/dev/null)
  start=$(date -d "$start" +%s 2>/dev/null) || start=''
  if [[ -n $start && $limit =~ ^([0-9]+-)?[0-9:]+$ ]]; then
    [[ $limit == *-* ]] && days=${limit%%-*} limit=${limit#*-}
    IFS=: read -r a b c <<<"$limit"
    if [[ -n $c ]]; then seconds=$((10#$a * 3600 + 10#$b * 60 + 10#$c))
    elif [[ -n $b ]]; then seconds=$((10#$a * 60 + 10#$b))
    else seconds=$((10#$a * 60)); fi
    seconds=$((seconds + 10#$days * 86400))
  elif [[ ${SLURM_JOB_START_TIME:-} =~ ^[0-9]+$ && ${SLURM_JOB_END_TIME:-} =~ ^[0-9]+$ ]]; then
    start=$SLURM_JOB_START_TIME
    seconds=$((SLURM_JOB_END_TIME - SLURM_JOB_START_TIME))
  fi
  if [[ -n $seconds ]] && (($(date +%s) >= start + seconds - 15)); then
    printf 'time-limit\n'
  else
    printf 'cancelled\n'
  fi
}

# record_jupyter_exit STATUS SIGNALLED LOG: why JupyterLab stopped, from its exit and its log.
record_jupyter_exit() {
  local status=$1 signalled=$2 log=$3
  if ((signalled || status >= 128)); then
    # slurmstepd writes why into the job's output ("*** JOB N ON node CANCELLED AT … DUE TO TIME
    # LIMIT ***"), not always before JupyterLab has stopped: it is waited for a few seconds (Slurm
    # allows KillWait, 30 s by default, between its SIGTERM and its SIGKILL). Without that line, the
    # job's start and limit decide.
    local line='' _
    for _ in 1 2 3 4 5 6; do
      # Anchored at the start of the line: a request's URL or Referer in JupyterLab's log can hold the same words.
      line=$(tail -n 200 "$log" 2>/dev/null | grep -m 1 -E '^(slurmstepd: |\[[0-9T:.-]+\] )error: \*\*\* JOB [0-9]+ ON .* CANCELLED AT ') && break
      sleep 0.5
    done
    case $line in
      *'DUE TO TIME LIMIT'*) record_end time-limit ;;
      ?*) record_end cancelled ;;
      *) record_end "$(ended_by_signal)" ;;
    esac
  elif ((status == 0)) && tail -n 200 "$log" 2>/dev/null | grep -qE '^\[I [^]]*\] No kernels for [0-9]+ seconds; shutting down'; then
    record_end idle "$idle_minutes"
  elif ((status == 0)); then
    record_end stopped
  fi
}

# Make the site's `module` command usable in this shell. OOD's job runs bash with the researcher's
# login environment, and a bash function reaches it only if the login shell exported it: a
# researcher whose shell is tcsh or zsh has no `module` here. Then load the site's bash start-up
# files (/etc/profile.d/*.sh, as a bash login shell does) once, and keep our own PATH in front.
ensure_module_command() {
  local profile_dir=${1:-/etc/profile.d} file saved_path=$PATH
  if declare -F module >/dev/null || command -v module >/dev/null 2>&1; then
    return 0
  fi
  for file in "$profile_dir"/*.sh; do
    # shellcheck disable=SC1090 # the site's own start-up files
    [[ -r $file ]] && source "$file" >/dev/null 2>&1
  done
  PATH=$saved_path${PATH:+:$PATH}
  declare -F module >/dev/null || command -v module >/dev/null 2>&1
}

# run_site_setup LINE...: the site's set-up lines (site.yml runtime.setup), in this shell, in order.
# The first one that fails ends the job with one line naming it.
run_site_setup() {
  local line
  for line in "$@"; do
    if [[ $line =~ (^|[[:space:];&|])(module|ml)[[:space:]] ]]; then
      ensure_module_command
    fi
    if ! eval "$line"; then
      fail "$msg_site_setup_failed" "$line" "$(hostname)"
    fi
  done
}

# prepare_runtime: the site's set-up lines (site.yml runtime.setup), then the container's own
# (containers/*.yml setup, and gpuSetup when GPUs were asked for); then the runtime must be there.
prepare_runtime() {
  run_site_setup "${site_setup[@]}" "${container_setup[@]}"
  if ((gpu_count > 0)); then
    run_site_setup "${container_gpu_setup[@]}"
  fi
  if ! command -v "$runtime" >/dev/null 2>&1; then
    fail "$msg_runtime_missing" "$runtime" "$(hostname)"
  fi
  if ((gpu_count > 0)) && ! gpu_driver_present; then
    fail "$msg_no_gpu_driver" "$(hostname)"
  fi
}

# gpu_driver_present: whether this node has an NVIDIA driver for --nv to bring into the container.
# Without one the runtime only warns and JupyterLab starts, but every GPU library in it then fails:
# a GPU session on such a node (a driver update half done, a node in the wrong partition) is ended
# at once instead, naming the node.
gpu_driver_present() {
  [[ -r /proc/driver/nvidia/version ]] || command -v nvidia-smi >/dev/null 2>&1
}

# choose_port HOST: set `port` to a free port on HOST, or end the job with one line (an empty port
# would otherwise become a syntax error in the Python configuration). From the kernel's own list of
# listening sockets where it has one (free_port), else with OOD's find_port, which runs a port_used
# program for each port it tries (a python3 start each, on nodes without nc or lsof: 0.2 s and more).
# Either way another process may take the port before JupyterLab binds it: run_jupyterlab then
# starts JupyterLab on another one.
choose_port() {
  free_port || port=$(find_port "$1")
  if [[ ! $port =~ ^[0-9]+$ ]]; then
    fail "$msg_no_free_port" "$(hostname)"
  fi
}

# free_port: set `port` to a port in OOD's range (2000–65535) that no TCP socket on this node listens
# on, from /proc/net/tcp and tcp6 (one program, not one per port tried); returns 1 where there is no
# /proc/net/tcp.
# The ports browsers and fetch() refuse to connect to (the Fetch standard's "bad ports": X11, IRC,
# SIP, NFS…) are never chosen, so a tool that reaches the session directly is not refused.
free_port() {
  local address try candidate
  local -A listening=([2049]=1 [3659]=1 [4045]=1 [4190]=1 [5060]=1 [5061]=1 [6000]=1 [6566]=1 [6665]=1
    [6666]=1 [6667]=1 [6668]=1 [6669]=1 [6679]=1 [6697]=1 [10080]=1)
  [[ -r /proc/net/tcp ]] || return 1
  # sl local_address rem_address st …: a local address is HEXADDRESS:HEXPORT, st 0A is LISTEN. One
  # awk reads them (bash's own read takes /proc files a byte at a time: 0.3 s for 200 sockets).
  while read -r address; do
    [[ $address =~ :([0-9A-Fa-f]{4})$ ]] && listening[$((16#${BASH_REMATCH[1]}))]=1
  done < <(awk '$4 == "0A" { print $2 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for try in 1 2 3 4 5 6 7 8 9 10; do
    candidate=$((2000 + (RANDOM * 32768 + RANDOM) % 63536))
    if [[ -z ${listening[$candidate]:-} ]]; then
      port=$candidate
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# The container: its runtime arguments, the image behind the researcher's choice, pulled once.
# ---------------------------------------------------------------------------------------------

# Where this app keeps what it learns about images and environments, per researcher.
ood_cache_dir() {
  printf '%s/ood-jupyter\n' "${XDG_CACHE_HOME:-$HOME/.cache}"
}

# Where a researcher's own packages and per-image installs live (they outlast every cache).
ood_data_dir() {
  printf '%s/ood-jupyter\n' "${XDG_DATA_HOME:-$HOME/.local/share}"
}

# ---------------------------------------------------------------------------------------------
# The neighbours: other researchers on the cluster can write group project directories, /scratch,
# /tmp and any directory a site left open. Nothing the session runs, sources or reads as its own
# comes from a place one of them could change.
# ---------------------------------------------------------------------------------------------

# closed_path PATH [OWNER [STRICT]]: whether no one but OWNER (a uid; default: PATH's own owner)
# and root can change PATH or any directory above it. Each must belong to root or OWNER and be
# writable by neither group nor others. A directory above PATH may instead be sticky (as /tmp and
# /scratch are: others cannot rename or remove what is not theirs there), unless STRICT is given:
# for the site's own directories, whose owner is not known, a sticky directory above would let any
# researcher create the path first and own it all. The path as written and the one it resolves to
# are both checked (a symbolic link above it counts as what it points to). Sets closed_owner (the
# owner) and, when it is not closed, closed_why (which and why, in words).
closed_path() {
  local path=$1 owner=${2:-} strict=${3:-} real part facts uid mode i
  local -a chain=() leaf=()
  closed_why='' closed_owner=''
  if ! real=$(realpath -e -- "$path" 2>/dev/null); then
    # shellcheck disable=SC2059 # the format is one of the app's own messages
    printf -v closed_why "$msg_reason_missing" "$path"
    return 1
  fi
  for part in "$path" "$real"; do
    leaf+=("${#chain[@]}")
    while [[ $part == /* ]]; do
      chain+=("$part")
      [[ $part == / ]] && break
      part=${part%/*}
      part=${part:-/}
    done
  done
  # Owner and mode only, one line each in the order asked (names are taken from chain: a name may
  # hold any character, a newline too).
  mapfile -t facts < <(stat -L -c '%u %a' -- "${chain[@]}" 2>/dev/null)
  for ((i = 0; i < ${#chain[@]}; i++)); do
    uid=${facts[i]%% *} mode=${facts[i]#* }
    if [[ ! $uid =~ ^[0-9]+$ || ! $mode =~ ^[0-7]+$ ]]; then
      # shellcheck disable=SC2059
      printf -v closed_why "$msg_reason_missing" "${chain[i]}"
      return 1
    fi
    [[ -n $owner ]] || owner=$uid
    if ((uid != 0 && uid != owner)); then
      # shellcheck disable=SC2059
      printf -v closed_why "$msg_reason_owner" "${chain[i]}" "$uid"
      return 1
    fi
    # Writable by group or others: refused, unless a sticky directory above PATH (and not STRICT).
    if (((8#$mode) & 8#022)) &&
      { [[ -n $strict || $i == "${leaf[0]}" || $i == "${leaf[1]}" ]] || ! (((8#$mode) & 8#1000)); }; then
      # shellcheck disable=SC2059
      printf -v closed_why "$msg_reason_writable" "${chain[i]}" "$mode"
      return 1
    fi
  done
  closed_owner=$owner
}

# closed_why_of PATH OWNER: set closed_why for PATH, found open inside a closed directory of OWNER's.
closed_why_of() {
  local facts
  facts=$(stat -L -c '%u %a' -- "$1" 2>/dev/null)
  # shellcheck disable=SC2059 # the formats are the app's own messages
  if [[ ${facts%% *} != "$2" && ${facts%% *} != 0 ]]; then
    printf -v closed_why "$msg_reason_owner" "$1" "${facts%% *}"
  else
    printf -v closed_why "$msg_reason_writable" "$1" "${facts#* }"
  fi
}

# closed_file FILE OWNER: whether FILE is a regular file (not a link) of OWNER's that group and
# others cannot write. Used for what is read from a directory closed_path accepted.
closed_file() {
  local facts
  facts=$(stat -c '%F %u %a' -- "$1" 2>/dev/null) || return 1
  [[ $facts == "regular file $2 "* || $facts == "regular empty file $2 "* ]] && ! (((8#${facts##* }) & 8#022))
}

# private_dir DIR: DIR (created mode 0700 if missing) must be this researcher's alone; else the job
# ends with one line. The app's own caches and package directories: what is read back from them
# (a probe's answer, an image, a package) is trusted as the session's own. Checked once per job.
declare -A private_dirs_checked=()
private_dir() {
  local dir=$1 why
  [[ -n ${private_dirs_checked[$dir]:-} ]] && return 0
  if [[ ! -d $dir ]] && ! why=$( (umask 077 && mkdir -p -- "$dir") 2>&1); then
    fail "$msg_dir_unwritable" "$dir" "${why##*: }"
  fi
  closed_path "$dir" "$EUID" || fail "$msg_dir_not_private" "$dir" "$closed_why"
  private_dirs_checked[$dir]=1
}

# private_subdir DIR: DIR, under a directory private_dir accepted, created mode 0700.
private_subdir() {
  [[ -d $1 ]] || (umask 077 && mkdir -p -- "$1") 2>/dev/null
}

# short_hash TEXT: 16 hex digits naming TEXT in file names.
short_hash() {
  local sum
  sum=$(printf '%s' "$1" | sha256sum)
  printf '%s\n' "${sum:0:16}"
}

# slug TEXT: TEXT reduced to letters, digits, ".", "_" and "-", for directory names.
slug() {
  local text=${1//[^A-Za-z0-9._-]/-}
  text=${text#[.-]}
  printf '%s\n' "${text:0:60}"
}

# own_image_slug IMAGE: the name of a researcher's own image's package directory (own-NAME).
own_image_slug() {
  local name=${1##*/}
  printf 'own-%s\n' "$(slug "${name%.sif}")"
}

# assemble_runtime_args: set the array runtime_args from settings.sh: --nv when GPUs were asked for,
# the site's and the container's binds (where this node has them), the researcher's extra binds.
assemble_runtime_args() {
  local path bind
  local -a extra_bind_list=()
  runtime_args=()
  # --nv brings the node's NVIDIA driver into the container; the GPUs Slurm assigned stay the only
  # ones visible (CUDA_VISIBLE_DEVICES passes through).
  if ((gpu_count > 0)); then
    runtime_args+=(--nv)
  fi
  for path in "${site_binds[@]}" "${container_binds[@]}"; do
    # A bind may name its place in the container (/host:/container[:ro]); the host side must exist.
    if [[ -e ${path%%:*} ]]; then
      runtime_args+=(--bind "$path")
    fi
  done
  # The researcher's extra binds: comma-separated, each checked by submit.yml.erb.
  IFS=',' read -r -a extra_bind_list <<<"$extra_binds"
  for bind in "${extra_bind_list[@]}"; do
    bind="${bind#"${bind%%[![:space:]]*}"}"
    bind="${bind%"${bind##*[![:space:]]}"}"
    if [[ -n $bind ]]; then
      runtime_args+=(--bind "$bind")
    fi
  done
}

# resolve_image IMAGE: set image_path (a SIF file to run) and image_id (what identifies its
# content, for the caches) for a .sif path or a docker:// or oras:// URI, or end the job with one line.
resolve_image() {
  local image=$1 facts
  case $image in
    docker://* | oras://*)
      image_from_registry "$image"
      ;;
    /*)
      if [[ ! -e $image ]]; then
        fail "$msg_image_missing" "$image" "$(hostname)"
      elif [[ ! -r $image || ! -f $image ]]; then
        fail "$msg_image_unreadable" "$image" "$(hostname)"
      elif ! image_is_runnable "$image"; then
        fail "$msg_image_not_sif" "$image"
      fi
      image_path=$image
      # A file's identity without reading it: a replaced or rebuilt image gets a new one.
      facts=$(stat -L -c '%d:%i:%s:%Y' -- "$image")
      image_id="file:$image:$facts"
      ;;
    *)
      fail "$msg_unknown_container" "$container"
      ;;
  esac
}

# image_is_runnable FILE: whether FILE starts as an image the runtime runs: a SIF (SIF_MAGIC after
# its 32-byte launch line), a SquashFS image ("hsqs") or a legacy ext3 image (0xEF53 at byte
# 1080). Anything else (a half-copied file, a Docker tarball, an HTML error page saved under a .sif
# name) would fail inside the runtime with a message about loop devices or FUSE.
image_is_runnable() {
  local start
  start=$(head -c 48 -- "$1" 2>/dev/null | tr -d '\0')
  [[ $start == hsqs* || $start == *SIF_MAGIC* ]] && return 0
  [[ $(od -An -tx1 -j1080 -N2 -- "$1" 2>/dev/null) == ' 53 ef' ]]
}

# prepare_image: the image of settings.sh's `image` (image_ref), found or pulled (image_path,
# image_id), the name of its package directory (image_slug) and the runtime arguments.
prepare_image() {
  image_ref=$image
  resolve_image "$image_ref"
  # A researcher's own image gets a package directory named after it.
  [[ -n $image_slug ]] || image_slug=$(own_image_slug "$image_ref")
  assemble_runtime_args
}

# enter_working_dir DIR: cd into DIR (empty: stay) and bind it into the container, unless it is in
# the home directory (there already); bind paths cannot carry "," or ":".
enter_working_dir() {
  if [[ -n $1 ]] && ! cd -- "$1"; then
    fail "$msg_working_dir_missing" "$1"
  fi
  bind_working_dir "$PWD"
}

# bind_working_dir DIR: add DIR to runtime_args as a bind, unless it is in the home directory.
# (`ood-jupyter preview` shows the command line with it.)
bind_working_dir() {
  case "$1/" in
    "$HOME"/*) ;;
    *[,:]*) fail "$msg_working_dir_unbindable" "$1" ;;
    *) runtime_args+=(--bind "$1") ;;
  esac
}

# parse_registry_uri URI: set registry_host, registry_repo and registry_ref (a tag or a digest).
# docker://name means Docker Hub's library/name, as the docker command reads it.
parse_registry_uri() {
  local rest=${1#*://} first
  first=${rest%%/*}
  if [[ $rest == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
    registry_host=$first
    rest=${rest#*/}
  elif [[ $1 == docker://* ]]; then
    registry_host=registry-1.docker.io
    [[ $rest == */* ]] || rest=library/$rest
  else
    registry_host=$first
    rest=${rest#*/}
  fi
  if [[ $rest == *@* ]]; then
    # repo[:tag]@digest: the digest decides; a tag beside it is only a note.
    registry_repo=${rest%%@*}
    registry_ref=${rest#*@}
    [[ ${registry_repo##*/} == *:* ]] && registry_repo=${registry_repo%:*}
  elif [[ ${rest##*/} == *:* ]]; then
    registry_repo=${rest%:*}
    registry_ref=${rest##*:}
  else
    registry_repo=$rest
    registry_ref=latest
  fi
}

# registry_curl ARG...: curl for a registry: https alone, redirects included (a registry's answer
# must not turn a request into a file:// read or plain http), no URL globbing, a time limit. Every
# caller puts "--" before its URL, so a URL can never be read as an option.
registry_curl() {
  curl -sS -g --proto =https --proto-redir =https --max-time 20 "$@"
}

# registry_digest URI: print the digest the URI's tag names now (what a pull would fetch). Returns 1
# if the registry cannot be reached from here, 2 if it answered but gave no digest (with its
# answer on stdout), 3 if this node has no curl to ask with.
registry_digest() {
  local uri=$1 url headers status realm service scope token accept
  parse_registry_uri "$uri"
  if [[ $registry_ref == sha256:* ]]; then
    printf '%s\n' "$registry_ref"
    return 0
  fi
  command -v curl >/dev/null 2>&1 || return 3
  accept='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.docker.distribution.manifest.v2+json'
  url="https://$registry_host/v2/$registry_repo/manifests/$registry_ref"
  headers=$(registry_curl -I -H "Accept: $accept" -- "$url" 2>/dev/null) || return 1
  status=$(awk 'NR == 1 { print $2 }' <<<"$headers")
  if [[ $status == 401 ]]; then
    # Anonymous token for public images (Docker Hub, GHCR, NGC's public images).
    realm=$(sed -nE 's/^[Ww]{2}[Ww]-[Aa]uthenticate: *Bearer .*realm="([^"]*)".*/\1/p' <<<"$headers" | tr -d '\r')
    service=$(sed -nE 's/^[Ww]{2}[Ww]-[Aa]uthenticate:.*service="([^"]*)".*/\1/p' <<<"$headers" | tr -d '\r')
    scope=$(sed -nE 's/^[Ww]{2}[Ww]-[Aa]uthenticate:.*scope="([^"]*)".*/\1/p' <<<"$headers" | tr -d '\r')
    [[ -n $realm ]] || { printf 'HTTP 401\n'; return 2; }
    # The realm is the registry's to name: an https:// address and nothing else ("-K file" would be
    # read by curl as an option, "file:///..." as a local file whose token would go to the registry).
    [[ $realm =~ ^https://[^[:space:][:cntrl:]]+$ ]] || { printf '%s\n' "$msg_registry_bad_realm"; return 2; }
    token=$(registry_curl -G --data-urlencode "service=$service" \
      --data-urlencode "scope=${scope:-repository:$registry_repo:pull}" -- "$realm" 2>/dev/null) || return 1
    token=$(sed -nE 's/.*"(access_token|token)" *: *"([^"]*)".*/\2/p' <<<"$token")
    [[ -n $token ]] || { printf 'no anonymous access\n'; return 2; }
    # The token is a header value, read by curl from stdin (-H @-): never on a command line.
    headers=$(printf 'Authorization: Bearer %s\n' "$token" |
      registry_curl -I -H "Accept: $accept" -H @- -- "$url" 2>/dev/null) || return 1
    status=$(awk 'NR == 1 { print $2 }' <<<"$headers")
  fi
  if [[ $status != 200 ]]; then
    printf 'HTTP %s\n' "${status:-error}"
    return 2
  fi
  sed -nE 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *(sha256:[0-9a-f]{64}).*/\1/p' <<<"$headers" | head -n1 | grep . ||
    { printf 'no digest in the answer\n'; return 2; }
}

# valid_digest TEXT: whether TEXT is a content digest as registries give them. A digest becomes a
# file name in the image caches: nothing else may (a URI's "@sha256:../../x", a doctored tags/ file).
# The same rule as src/rules.ts's (test/image-rules.test.ts keeps them equal).
valid_digest() {
  [[ $1 =~ ^sha256:[0-9a-f]{64}$ ]]
}

# own_image_cache: the researcher's own image cache, private to them; set own_images.
own_image_cache() {
  private_dir "$(ood_cache_dir)"
  own_images="$(ood_cache_dir)/images"
  private_subdir "$own_images"
}

# site_cache_usable: whether the site's image cache (site.yml images.cacheDir) can be trusted: its
# directory and every one above it closed to researchers (closed_path), so only the staff account
# that fills it with `ood-jupyter pull` can have put an image there. A cache others can write is
# skipped with one line (once per job): a neighbour could otherwise plant an image under the name
# of a digest a curated tag points at, and every session would run it. Sets site_cache_owner.
site_cache_usable() {
  if [[ -z ${site_cache_state:-} ]]; then
    site_cache_state=no
    if [[ -n ${image_cache_dir:-} && -d $image_cache_dir ]]; then
      if closed_path "$image_cache_dir" '' strict; then
        site_cache_state=yes site_cache_owner=$closed_owner
      else
        say "$msg_site_cache_skipped" "$image_cache_dir" "$closed_why"
      fi
    fi
  fi
  [[ $site_cache_state == yes ]]
}

# image_caches: the caches to look in, each as "DIR OWNER": the site's (when it can be trusted),
# then the researcher's own. With only_site_cache (staff filling the site cache), the site's alone.
image_caches() {
  site_cache_usable && printf '%s %s\n' "$site_cache_owner" "$image_cache_dir"
  if [[ -z ${only_site_cache:-} ]]; then
    printf '%s %s\n' "$EUID" "$own_images"
  fi
}

# image_from_registry URI: the SIF of the URI's current digest, from a cache or pulled into the
# researcher's own. The pull is done once however many of their sessions start together (a lock
# per digest), into a temporary name renamed when complete (a killed pull leaves nothing a later
# session would use), and keyed by digest (a tag that has moved is pulled again). No network: the
# last copy pulled. Sessions never write the site cache; staff fill it with `ood-jupyter pull`
# (only_site_cache), which refuses a site cache researchers could change.
image_from_registry() {
  local uri=$1 digest rc dir owner key when
  key=$(short_hash "$uri")
  # Parsed here too: registry_digest runs in a subshell, and the messages name the registry.
  parse_registry_uri "$uri"
  if [[ $uri == *@* ]] && ! valid_digest "$registry_ref"; then
    fail "$msg_bad_digest" "$uri" "$registry_ref"
  fi
  if [[ -n ${only_site_cache:-} ]]; then
    closed_path "$image_cache_dir" "$EUID" strict || fail "$msg_site_cache_unsafe" "$image_cache_dir" "$closed_why" "$image_cache_dir"
  else
    own_image_cache
  fi
  # Decided here, in the job's own shell: image_caches runs in a subshell, whose output is read.
  site_cache_usable || :
  digest=$(registry_digest "$uri")
  rc=$?
  if ((rc == 0)) && ! valid_digest "$digest"; then
    digest="no digest in the answer"
    rc=2
  fi
  if ((rc != 0)); then
    # The last digest this URI was pulled as, in any cache (a tags/ file that is not a digest is ignored).
    while read -r owner dir; do
      if closed_file "$dir/tags/$key" "$owner" && read -r digest when <"$dir/tags/$key" && valid_digest "$digest" &&
        closed_file "$dir/${digest#sha256:}.sif" "$owner"; then
        say "$msg_registry_unchecked" "$registry_host" "$uri" "$when"
        image_path=$dir/${digest#sha256:}.sif
        image_id=$digest
        return 0
      fi
    done < <(image_caches)
    case $rc in
      1 | 3) fail "$msg_registry_unreachable" "$registry_host" "$(hostname)" "$uri" ;;
      *) fail "$msg_registry_refused" "$uri" "$digest" ;;
    esac
  fi
  image_id=$digest
  while read -r owner dir; do
    if closed_file "$dir/${digest#sha256:}.sif" "$owner"; then
      image_path=$dir/${digest#sha256:}.sif
      # Noted only in a cache this job may write: its own, or the site's when staff fill it.
      [[ $dir == "${own_images:-}" || -n ${only_site_cache:-} ]] && remember_tag "$dir" "$key" "$digest"
      return 0
    fi
  done < <(image_caches)
  dir=$own_images
  [[ -n ${only_site_cache:-} ]] && dir=$image_cache_dir
  pull_image "$dir" "$uri" "$digest"
  remember_tag "$dir" "$key" "$digest"
}

# remember_tag DIR KEY DIGEST: note which digest a URI was last pulled as (used when offline), in a
# cache of this account's own.
remember_tag() {
  (umask 022 && mkdir -p -- "$1/tags") 2>/dev/null || return 0
  printf '%s %s\n' "$3" "$(date +%Y-%m-%d)" >"$1/tags/$2.$$" 2>/dev/null && mv -f -- "$1/tags/$2.$$" "$1/tags/$2"
}

# pull_image DIR URI DIGEST: pull URI, pinned to DIGEST, to DIR/<digest>.sif; set image_path. DIR
# is this account's own (its private cache, or the site cache of the staff account filling it), and
# so are the locks: only this account pulls into DIR, so the lock lives in its private cache
# directory, where nobody else can create, replace or hold it (a lock file in a shared directory
# can be pre-created or held by a neighbour, and the pull would fail or wait forever).
pull_image() {
  local dir=$1 uri=$2 digest=$3 hex=${3#sha256:} pinned tmp log lock lock_fd start
  parse_registry_uri "$uri"
  pinned="${uri%%://*}://$registry_host/$registry_repo@$digest"
  [[ $uri == docker://* && $registry_host == registry-1.docker.io ]] && pinned="docker://$registry_repo@$digest"
  private_dir "$(ood_cache_dir)"
  private_subdir "$(ood_cache_dir)/locks"
  lock="$(ood_cache_dir)/locks/$(short_hash "$dir")-$hex"
  (umask 077 && mkdir -p -- "$dir" && : >>"$lock") 2>/dev/null || fail "$msg_cache_unwritable" "$lock"
  exec {lock_fd}<"$lock" || fail "$msg_cache_unwritable" "$lock"
  if ! flock -n "$lock_fd"; then
    say "$msg_pull_waiting" "$uri"
    flock "$lock_fd"
  fi
  if [[ ! -r $dir/$hex.sif ]]; then
    # Holding the lock, any temporary file of this digest is a pull that was killed.
    rm -f -- "$dir/.pull-$hex".*
    tmp="$dir/.pull-$hex.$$.sif"
    log="$dir/.pull-$hex.$$.log"
    say "$msg_pulling" "$uri" "$dir"
    start=$SECONDS
    if ! "$runtime" pull --disable-cache "$tmp" "$pinned" >"$log" 2>&1; then
      local why
      why=$(grep -E 'FATAL|ERROR' "$log" | tail -n1)
      rm -f -- "$tmp" "$log"
      exec {lock_fd}>&-
      fail "$msg_pull_failed" "$uri" "${why:-the runtime gave no reason}"
    fi
    # Readable by every researcher (a site cache serves them all), writable by this account alone.
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$dir/$hex.sif"
    rm -f -- "$log"
    say "$msg_pulled" "$uri" "$((SECONDS - start))"
  fi
  exec {lock_fd}>&-
  image_path=$dir/$hex.sif
}

# ---------------------------------------------------------------------------------------------
# The image's Python: what it offers, and where JupyterLab comes from if it lacks it.
# ---------------------------------------------------------------------------------------------

# python3 -c "$python_module_main" MODULE ARG... runs MODULE as `python3 -m MODULE ARG...` would,
# but with the current directory taken off sys.path before anything is imported. `python3 -m`
# puts the current directory first on sys.path, and the job runs in the working directory (a
# group project directory, say) or wherever sbatch was called: a lab-mate's jupyterlab/ or json.py
# there would run inside the researcher's JupyterLab. (Python 3.11's -P does this too, but images
# carry older Pythons; where PYTHONSAFEPATH or -P is in force, nothing was put there to take off.)
# Notebook kernels start this way too (kernel_argv); IPython puts the directory back on sys.path
# for the researcher's own code, as in every Jupyter.
python_module_main='import sys; getattr(sys.flags, "safe_path", False) or sys.path.pop(0); import runpy; runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)'

# with_environment VAR=VALUE... -- COMMAND...: run COMMAND (a program or the runtime's shell
# function) with these variables exported, and without the host's PYTHONPATH and PYTHONHOME (a
# loaded Python module's), which would reach the container's Python.
with_environment() {
  (
    unset PYTHONPATH PYTHONHOME
    while [[ $1 != -- ]]; do
      export "${1?}"
      shift
    done
    shift
    "$@"
  )
}

# in_image [VAR=VALUE...] -- ARG...: run ARG... in the session's container, its Python isolated
# from the host's PYTHONPATH and ~/.local, with the given environment.
in_image() {
  local -a vars=()
  while [[ $1 != -- ]]; do
    vars+=("$1")
    shift
  done
  shift
  with_environment "${vars[@]}" PYTHONNOUSERSITE=1 -- "$runtime" exec "${runtime_args[@]}" "$image_path" "$@"
}

# inspect_python MODE ARG...: the image's python3 runs inspect-python.py (with the overlay
# inspect_overlay, if set: its packages and their shared libraries).
inspect_python() {
  local -a vars=()
  if [[ -n ${inspect_overlay:-} ]]; then
    vars=("PYTHONPATH=$inspect_overlay/site-packages" "$(runtime_env_prefix)LD_LIBRARY_PATH=$inspect_overlay/lib")
  fi
  in_image "${vars[@]}" -- python3 -c "${inspect_python_code:-$(cat "$session_lib_dir/inspect-python.py")}" "$@"
}

# read_probe TEXT: set py_* from inspect-python.py's name=value lines (empty: not there).
read_probe() {
  local name value
  py_executable='' py_version='' py_server='' py_lab='' py_kernel='' py_pip='' py_user_site=''
  while IFS='=' read -r name value; do
    case $name in
      executable) py_executable=$value ;;
      python) py_version=$value ;;
      jupyter_server) py_server=$value ;;
      jupyterlab) py_lab=$value ;;
      ipykernel) py_kernel=$value ;;
      pip) py_pip=$value ;;
      user_site) py_user_site=$value ;;
    esac
  done <<<"$1"
  py_minor=${py_version%.*}
}

# probe_python [OVERLAY]: what the image's python3 offers (with OVERLAY on PYTHONPATH), set as
# py_*. Cached by image identity: a warm start probes nothing.
probe_python() {
  local overlay=${1:-} cache key report
  # Its answer becomes the kernel's command line: it is kept where only this researcher can write.
  private_dir "$(ood_cache_dir)"
  cache="$(ood_cache_dir)/probes"
  key=$(short_hash "probe-v2|$runtime|$image_id|$overlay|$(overlay_stamp "$overlay")")
  if [[ -r $cache/$key ]]; then
    report=$(<"$cache/$key")
  else
    local start=$SECONDS
    report=$(inspect_overlay=$overlay inspect_python probe 2>/dev/null) || report=''
    say "$msg_probed" "$image_ref${overlay:+ with $overlay}" "$((SECONDS - start))"
    # Only an answer is kept: a failed probe (no python3, a runtime error) is asked again next time.
    if [[ $report == *python=* ]] && private_subdir "$cache"; then
      printf '%s\n' "$report" >"$cache/$key.$$" && mv -f "$cache/$key.$$" "$cache/$key"
    fi
  fi
  read_probe "$report"
}

# overlay_stamp DIR: changes when the overlay is rebuilt, so what was probed with it is asked again.
overlay_stamp() {
  [[ -n $1 ]] && stat -c '%Y' -- "$1/site-packages" 2>/dev/null
}

# jupyter_usable: whether the probed Python can run this session (Jupyter Server 2+, JupyterLab, ipykernel).
jupyter_usable() {
  [[ -n $py_lab && -n $py_kernel && -n $py_server && ! ${py_server%%.*} =~ ^[01]$ ]]
}

# missing_parts: what the probed Python lacks, in words.
missing_parts() {
  local -a parts=()
  [[ -n $py_server && ${py_server%%.*} =~ ^[01]$ ]] && parts+=("Jupyter Server 2 (it has $py_server)")
  [[ -z $py_lab ]] && parts+=(JupyterLab)
  [[ -z $py_kernel ]] && parts+=(ipykernel)
  local IFS=,
  printf '%s\n' "${parts[*]}" | sed 's/,/, /g; s/\(.*\), /\1 and /'
}

# site_overlay MINOR: print the site's overlay directory for Python MINOR (3.12…), or fail if the
# site has none for that version (python.overlays).
site_overlay() {
  local overlay=${overlays_dir:+$overlays_dir/python$1}
  [[ -n $overlay && -d $overlay/site-packages ]] || return 1
  printf '%s\n' "$overlay"
}

# overlay_trusted DIR: whether the site overlay DIR is closed to researchers (closed_path of its
# site-packages: the overlay and every directory above it). JupyterLab imports its packages: an
# overlay a researcher could change would run their code in everyone's sessions. Else one line.
overlay_trusted() {
  local open
  if closed_path "$1/site-packages" '' strict; then
    # Nor anything in it, two levels down (a package directory, its __init__.py), links followed.
    # (A link that leads nowhere on this node, into the image say, is left out: its own mode is 0777.)
    open=$(find -L "$1/site-packages" "$1/lib" -maxdepth 2 ! -xtype l \( -perm /022 -o ! -uid "$closed_owner" \) -print -quit 2>/dev/null)
    [[ -z $open ]] && return 0
    closed_why_of "$open" "$closed_owner"
  fi
  say "$msg_overlay_untrusted" "$1" "$closed_why"
  return 1
}

# choose_jupyter IMAGE_SLUG: where this session's JupyterLab and ipykernel come from, in order:
#   1. the image itself;
#   2. the site's overlay for the image's Python version (site.yml python.overlays);
#   3. a per-user install into a directory for this image (site.yml python.userInstall);
# else end the job with one line, leaving a definition file for an image that has them.
# Sets jupyter_overlay (a directory laid out as an overlay, or empty for the image's own).
choose_jupyter() {
  local image_slug=$1 lacking overlay minor
  jupyter_overlay=''
  probe_python
  if [[ -z $py_version ]]; then
    fail "$msg_no_python" "$image_ref"
  fi
  jupyter_source=image
  jupyter_usable && return 0
  lacking=$(missing_parts)
  minor=$py_minor
  if overlay=$(site_overlay "$minor") && overlay_trusted "$overlay"; then
    runtime_args+=(--bind "$overlay:$overlay:ro")
    probe_python "$overlay"
    if jupyter_usable; then
      say "$msg_using_overlay" "$lacking" "$minor" "$overlay"
      jupyter_overlay=$overlay
      jupyter_source=overlay
      return 0
    fi
    say "$msg_overlay_unusable" "$overlay" "$(missing_parts)"
    probe_python
  fi
  if ((user_install)); then
    user_install_jupyter "$image_slug" "$lacking"
    jupyter_source=installed
    return 0
  fi
  write_definition_file
  fail "$msg_no_jupyter_lab" "$image_ref" "$lacking" "$py_minor" "$definition_file" "$definition_file"
}

# user_install_jupyter IMAGE_SLUG LACKING: install JupyterLab and ipykernel once into a
# per-user, per-image directory laid out as an overlay; sets jupyter_overlay.
user_install_jupyter() {
  local target log lock_fd why
  private_dir "$(ood_data_dir)"
  target="$(ood_data_dir)/jupyterlab/$1-py$py_minor"
  private_subdir "${target%/*}" || fail "$msg_cache_unwritable" "${target%/*}"
  exec {lock_fd}>>"$target.lock"
  flock "$lock_fd"
  if [[ ! -d $target/site-packages ]]; then
    if [[ -z $py_pip ]]; then
      exec {lock_fd}>&-
      write_definition_file
      fail "$msg_user_install_no_pip" "$image_ref" "$2" "$definition_file" "$definition_file"
    fi
    say "$msg_user_installing" "$2" "$target"
    rm -rf "$target.partial"
    log="$target.log"
    # --target: nothing lands in ~/.local; a short timeout: an offline node says so quickly.
    if ! in_image PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 -- \
      python3 -s -c "$python_module_main" pip install --quiet --no-cache-dir --timeout 15 --retries 1 \
      --target "$target.partial/site-packages" jupyterlab ipykernel >"$log" 2>&1; then
      rm -rf "$target.partial"
      exec {lock_fd}>&-
      write_definition_file
      if grep -qiE 'NewConnectionError|Name or service not known|Temporary failure in name resolution|Network is unreachable|ConnectTimeout|Could not fetch URL|connection broken|Failed to establish' "$log"; then
        fail "$msg_user_install_offline" "$image_ref" "$2" "$(hostname)" "$definition_file" "$definition_file"
      fi
      why=$(grep -E '^ERROR' "$log" | tail -n1)
      fail "$msg_user_install_failed" "$image_ref" "${why:-see $log}" "$definition_file"
    fi
    # pip --target puts data files (share/jupyter, etc/jupyter) inside the target: lift them up.
    local part
    for part in share etc bin; do
      [[ -d $target.partial/site-packages/$part ]] && mv "$target.partial/site-packages/$part" "$target.partial/$part"
    done
    mv "$target.partial" "$target"
  fi
  exec {lock_fd}>&-
  runtime_args+=(--bind "$target")
  # What pip installed must work in this image (probed once, like an overlay).
  probe_python "$target"
  if ! jupyter_usable; then
    write_definition_file
    fail "$msg_user_install_failed" "$image_ref" "$target still lacks $(missing_parts); remove it to install again" "$definition_file"
  fi
  jupyter_overlay=$target
}

# write_definition_file: an Apptainer definition for this image plus JupyterLab and ipykernel, next
# to output.log, for the researcher or their support team to build. Sets definition_file.
write_definition_file() {
  definition_file="$PWD/jupyterlab-image.def"
  local install='python3 -m pip install --no-cache-dir jupyterlab ipykernel'
  [[ -n $py_pip ]] || install="python3 -m ensurepip || { echo 'this image has no pip: install it with the image'\\''s package manager first'; exit 1; }
    $install"
  cat >"$definition_file" <<DEF
# Written by ood-jupyter: the image ${image_ref}
# with JupyterLab and ipykernel added. Build it where there is network, then launch the new image:
#   apptainer build jupyterlab.sif ${definition_file}
Bootstrap: localimage
From: ${image_path}

%post
    ${install}
DEF
}
# ---------------------------------------------------------------------------------------------
# Kernels: the image's Python with the researcher's package directory, and their own environments.
# ---------------------------------------------------------------------------------------------

# json_string TEXT: TEXT as a JSON string. Every control character is escaped (JSON allows none
# raw): an environment directory's name may hold any of them, and one left raw would make the whole
# kernel.json or card.json unreadable.
json_string() {
  local text=$1 out='' char i
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\t'/\\t}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  if [[ $text == *[[:cntrl:]]* ]]; then
    for ((i = 0; i < ${#text}; i++)); do
      char=${text:i:1}
      if [[ $char == [[:cntrl:]] && $char != $'\x7f' ]]; then
        printf -v char '\\u%04x' "'$char"
      fi
      out+=$char
    done
    text=$out
  fi
  printf '"%s"' "$text"
}

# prepare_package_dir IMAGE_SLUG: the researcher's package directory for this image and Python,
# created on first use. `pip install` in the session (a notebook's %pip, a terminal) lands there,
# never in ~/.local, and every later session of this image sees it. Sets package_dir and package_site.
prepare_package_dir() {
  # On the kernels' PYTHONPATH: only this researcher may write it.
  private_dir "$(ood_data_dir)"
  package_dir="$(ood_data_dir)/packages/$1-py$py_minor"
  package_site="$package_dir/${py_user_site:-lib/python$py_minor/site-packages}"
  make_dir "$package_site"
}

# make_dir DIR: create DIR and its parents, or end the job with one line naming DIR and the reason
# (mkdir's own message would be a second line).
make_dir() {
  local why
  why=$(mkdir -p -- "$1" 2>&1) && return 0
  fail "$msg_dir_unwritable" "$1" "${why##*: }"
}

# check_writable DIR...: end the job with one line unless 64 kB can be written in each DIR. A home
# directory that is full or over its quota lets JupyterLab start and then fail on its first
# notebook, kernel connection file or pip install; a test write finds both (df knows no quotas).
check_writable() {
  local dir probe why
  for dir in "$@"; do
    probe="$dir/.ood-jupyter-write-test.$$"
    why=$({ printf '%65536s' '' >"$probe"; } 2>&1)
    if [[ -n $why ]] || [[ ! -s $probe ]]; then
      rm -f -- "$probe" 2>/dev/null
      why=${why##*: }
      fail "$msg_dir_unwritable" "$dir" "${why:-it cannot be written}"
    fi
    rm -f -- "$probe"
  done
}

# write_kernel DIR ARGV_JSON DISPLAY_NAME ENV_JSON: one kernelspec.
write_kernel() {
  mkdir -p "$1"
  cat >"$1/kernel.json" <<KERNEL
{
  "argv": $2,
  "display_name": $(json_string "$3"),
  "language": "python",
  "env": $4,
  "metadata": { "debugger": true }
}
KERNEL
}

# environment_dirs: the researcher's conda environments and venvs that could give kernels.
environment_dirs() {
  local base env
  for base in "$HOME/.conda/envs" "$HOME/miniforge3/envs" "$HOME/miniconda3/envs" "$HOME/anaconda3/envs" \
    "$HOME/micromamba/envs" "$HOME/venvs" "$HOME/.venvs" "${env_search_dirs[@]}"; do
    [[ $base == \~/* ]] && base=$HOME/${base:2}
    for env in "$base"/*/; do
      env=${env%/}
      [[ -e $env/bin/python3 || -L $env/bin/python3 || -e $env/bin/python || -L $env/bin/python ]] && printf '%s\n' "$env"
    done
  done
}

# environment_trusted ENV: whether no one but ENV's owner can change what discovery runs of it: its
# bin/, its site-packages (a .pth file there runs even under python -I) and the Python its python3
# leads to. The researcher's own environment may sit under a sticky directory (/scratch/$USER);
# another owner's only under directories no one else can write (closed_path STRICT).
environment_trusted() {
  local env=$1 part
  local -a parts=("$env/bin")
  for part in "$env"/lib/python*/site-packages; do
    [[ -d $part ]] && parts+=("$part")
  done
  part=$(realpath -e -- "$env/bin/python3" 2>/dev/null || realpath -e -- "$env/bin/python" 2>/dev/null) && parts+=("$part")
  for part in "${parts[@]}"; do
    closed_path "$part" "$EUID" || closed_path "$part" '' strict || return 1
  done
}

# discover_environments: which environments can give kernels in this image, as inspect-python.py's
# lines. Cached by the image and what the environments look like now (their directories' times):
# a warm start runs nothing in the container.
discover_environments() {
  local cache key stamp env
  local -a found=() envs=()
  mapfile -t found < <(environment_dirs)
  # Discovery runs each environment's python: only one that no one but its owner can change (a
  # lab-mate could otherwise replace an environment in a shared project directory, and it would
  # run in this session without the researcher choosing it).
  for env in "${found[@]}"; do
    if environment_trusted "$env"; then
      envs+=("$env")
    else
      printf 'skip\t%s\tenvironment\t%s\n' "$env" "$closed_why"
    fi
  done
  ((${#envs[@]})) || return 0
  stamp=$(stat -c '%n %Y' -- "${envs[@]}" "${envs[@]/%//bin}" "${envs[@]/%//share/jupyter/kernels}" 2>/dev/null
    for env in "${envs[@]}"; do stat -c '%n %Y' -- "$env"/lib/python*/site-packages 2>/dev/null; done)
  private_dir "$(ood_cache_dir)"
  cache="$(ood_cache_dir)/environments"
  key=$(short_hash "envs-v1|$runtime|$image_id|$stamp")
  if [[ ! -r $cache/$key ]]; then
    # Kept only if the container answered; else asked again next time.
    if private_subdir "$cache" && inspect_python environments "${envs[@]}" >"$cache/$key.$$" 2>/dev/null; then
      mv -f "$cache/$key.$$" "$cache/$key"
    else
      rm -f "$cache/$key.$$"
      return 0
    fi
  fi
  cat "$cache/$key"
}

# environment_kernel_env KIND ENV: the kernelspec environment of a kernel from the researcher's
# environment: its own bin first, none of the image kernel's package directory or overlay, and
# `pip install` into the environment itself.
environment_kernel_env() {
  local kind=$1 env=$2 prefix_var=VIRTUAL_ENV
  [[ $kind == conda ]] && prefix_var=CONDA_PREFIX
  printf '{ "PYTHONPATH": "", "PIP_USER": "0", "LD_LIBRARY_PATH": "/.singularity.d/libs", "%s": %s, "PATH": %s }' \
    "$prefix_var" "$(json_string "$env")" "$(json_string "$env/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")"
}

# kernel_argv PYTHON: a kernelspec's argv (JSON) that runs ipykernel with PYTHON. As
# `python -m ipykernel_launcher`, but started without the notebook's directory on sys.path
# (python_module_main): `-m` would run an ipykernel_launcher.py planted in a shared directory as the
# kernel itself. IPython puts the directory back for the researcher's own code, as in every Jupyter.
kernel_argv() {
  printf '[ %s, "-c", %s, "ipykernel_launcher", "-f", "{connection_file}" ]\n' "$(json_string "$1")" "$(json_string "$python_module_main")"
}

# write_kernels KERNELS_DIR LABEL: this session's kernels. The image's Python (always), with the
# package directory (and the overlay) on PYTHONPATH; then each of the researcher's environments
# that runs here, in the same container with the same GPUs; one line for each that does not.
write_kernels() {
  local dir=$1 label=$2 tag env kind field4 field5 field6 target display
  python_environment
  write_kernel "$dir/python3" \
    "$(kernel_argv "$py_executable")" \
    "$label" "{ \"PYTHONPATH\": $(json_string "$kernel_pythonpath") }"
  kernel_names=("$label")
  # inspect-python.py's lines: skip ENV KIND REASON | env ENV KIND PYTHON VERSION |
  # carried ENV KIND KERNEL_NAME SOURCE_DIR SPEC_JSON
  while IFS=$'\t' read -r tag env kind field4 field5 field6; do
    case $tag in
      skip) say "$msg_environment_skipped" "$env" "$field4" ;;
      env)
        target="$dir/$(slug "${env##*/}")-$(short_hash "$env" | cut -c1-6)"
        display="Python $field5 ($kind: ${env##*/})"
        write_kernel "$target" "$(kernel_argv "$field4")" \
          "$display" "$(environment_kernel_env "$kind" "$env")"
        kernel_names+=("$display")
        ;;
      carried)
        target="$dir/$(slug "${env##*/}-$field4")-$(short_hash "$env" | cut -c1-6)"
        mkdir -p "$target"
        # Its logos and other resources, then its spec (display name with the environment's).
        cp -R -- "$field5/." "$target/" 2>/dev/null
        printf '%s\n' "$field6" >"$target/kernel.json"
        kernel_names+=("$field4 ($kind: ${env##*/})")
        ;;
    esac
  done < <(discover_environments)
}

# ---------------------------------------------------------------------------------------------
# The launch: what before.sh decided, handed to script.sh, and the environment JupyterLab gets.
# ---------------------------------------------------------------------------------------------

# runtime_env_prefix: how the runtime is told to set a variable inside the container.
runtime_env_prefix() {
  if [[ $runtime == singularity ]]; then printf 'SINGULARITYENV_\n'; else printf 'APPTAINERENV_\n'; fi
}

# python_environment: set the array python_env, the variables the image's Python runs with in a
# session's kernels and in a batch job, and kernel_pythonpath, their PYTHONPATH.
python_environment() {
  local prefix pair
  prefix=$(runtime_env_prefix)
  kernel_pythonpath=$package_site${jupyter_overlay:+:$jupyter_overlay/site-packages}
  python_env=()
  # The host's ~/.local would shadow the image's packages (and pip would install there).
  if ((hide_host_user_site)); then
    python_env+=(PYTHONNOUSERSITE=1)
  else
    kernel_pythonpath+=":$HOME/.local/lib/python$py_minor/site-packages"
  fi
  # `pip install` (a notebook's %pip, a terminal, a batch job) goes to the package directory of this
  # image, and what it installs there is on PATH.
  python_env+=("PYTHONUSERBASE=$package_dir" PIP_USER=1 PIP_BREAK_SYSTEM_PACKAGES=1 "${prefix}PREPEND_PATH=$package_dir/bin")
  # The overlay's shared libraries (for its compiled modules).
  [[ -n $jupyter_overlay ]] && python_env+=("${prefix}LD_LIBRARY_PATH=$jupyter_overlay/lib")
  # The container preset's own variables (containers/*.yml env).
  for pair in "${container_env[@]}"; do
    python_env+=("$prefix$pair")
  done
}

# jupyter_environment SESSION_DIR: set the array jupyter_env, the variables JupyterLab starts with.
jupyter_environment() {
  python_environment
  jupyter_env=(
    "${python_env[@]}"
    # The image kernel's and the terminals' PYTHONPATH. The server's own has no package directory:
    # a broken package installed there cannot stop JupyterLab.
    "OOD_JUPYTER_KERNEL_PYTHONPATH=$kernel_pythonpath"
    # This session's kernel list first, a private runtime directory, the session's own configuration
    # directory instead of ~/.jupyter; the researcher's JupyterLab settings and workspaces where they
    # always are.
    "JUPYTER_PATH=$1/jupyter/data${jupyter_overlay:+:$jupyter_overlay/share/jupyter}"
    "JUPYTER_RUNTIME_DIR=$1/jupyter/runtime"
    "JUPYTER_CONFIG_DIR=$1/jupyter/config"
    "JUPYTERLAB_SETTINGS_DIR=$HOME/.jupyter/lab/user-settings"
    "JUPYTERLAB_WORKSPACES_DIR=$HOME/.jupyter/lab/workspaces"
  )
  # The job's own limits for jupyter-resource-usage (where an image has it), not the node's.
  [[ ${SLURM_MEM_PER_NODE:-} =~ ^[0-9]+$ ]] && jupyter_env+=("MEM_LIMIT=$((SLURM_MEM_PER_NODE * 1024 * 1024))")
  [[ ${SLURM_CPUS_PER_TASK:-} =~ ^[0-9]+$ ]] && jupyter_env+=("CPU_LIMIT=$SLURM_CPUS_PER_TASK")
  if [[ -n $jupyter_overlay ]]; then
    jupyter_env+=(
      "PYTHONPATH=$jupyter_overlay/site-packages"
      "JUPYTERLAB_DIR=$jupyter_overlay/share/jupyter/lab"
      "JUPYTER_CONFIG_PATH=$jupyter_overlay/etc/jupyter"
    )
  fi
}

# jupyterlab_command IMAGE CONFIG: set the array jupyterlab_argv, the command that runs a session's
# JupyterLab from IMAGE with the configuration file CONFIG (`ood-jupyter preview` shows it).
jupyterlab_command() {
  jupyterlab_argv=("$runtime" exec "${runtime_args[@]}" "$1" python3 -s -c "$python_module_main" jupyterlab "--config=$2")
}

# run_jupyterlab SESSION_DIR: run the session's JupyterLab in the container until it ends; returns
# its exit status. The port before.sh chose was free then, but another process (another session's
# kernel, say) may bind it before JupyterLab does, which then ends at once: "port N is not
# available". Then a new port is chosen and JupyterLab starts again, twice at most; after.sh learns
# the port from JupyterLab's server file. JupyterLab runs as `python3 -m jupyterlab` (many images,
# Debian's JupyterLab among them, have no `jupyter` command) without the working directory on
# sys.path (python_module_main).
run_jupyterlab() {
  local session_dir=$1 log=$1/output.log attempt status seen
  for attempt in 1 2 3; do
    seen=$(stat -c %s "$log" 2>/dev/null) || seen=0
    mark_phase container_start
    jupyterlab_command "$image_path" "$session_dir/jupyter/config/jupyter_server_config.py"
    with_environment "${jupyter_env[@]}" "OOD_JUPYTER_PORT=$port" -- "${jupyterlab_argv[@]}"
    status=$?
    if ((status == 1 && attempt < 3)) && tail -c +$((seen + 1)) "$log" 2>/dev/null | grep -q "port $port is not available"; then
      say "$msg_port_taken" "$port"
      choose_port "$host"
      continue
    fi
    return "$status"
  done
}

# run_batch_command COMMAND...: run COMMAND as a batch job in the environment a session of this
# container gives its notebook kernel: the same image (pulled once), binds, --nv, package directory
# and PYTHONPATH. `ood-jupyter batch-script` writes a job script that ends with this.
run_batch_command() {
  prepare_runtime
  prepare_image
  probe_python
  [[ -n $py_version ]] || fail "$msg_no_python" "$image_ref"
  # The site overlay a session of this image uses (its packages are on the kernel's PYTHONPATH).
  if ! jupyter_usable && jupyter_overlay=$(site_overlay "$py_minor") && overlay_trusted "$jupyter_overlay"; then
    runtime_args+=(--bind "$jupyter_overlay:$jupyter_overlay:ro")
  else
    jupyter_overlay=''
  fi
  prepare_package_dir "$image_slug"
  enter_working_dir "$working_dir"
  python_environment
  with_environment "${python_env[@]}" "PYTHONPATH=$kernel_pythonpath" -- \
    "$runtime" exec "${runtime_args[@]}" "$image_path" "$@"
}

# write_session_facts FILE: what the session card (info.md.erb) shows beyond the form's values, as
# JSON: the GPUs the job got, the image and where JupyterLab came from, the kernels, where
# `pip install` goes, and the idle limit.
write_session_facts() {
  local name kernels=''
  for name in "${kernel_names[@]}"; do
    kernels+="${kernels:+, }$(json_string "$name")"
  done
  cat >"$1" <<FACTS
{
  "gpus": $(json_string "${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}"),
  "image": $(json_string "$image_ref"),
  "image_file": $(json_string "$image_path"),
  "jupyter_from": $(json_string "${jupyter_source:-image}"),
  "jupyter_dir": $(json_string "$jupyter_overlay"),
  "package_dir": $(json_string "$package_dir"),
  "kernels": [${kernels}],
  "idle_minutes": ${idle_minutes:-0}
}
FACTS
}

# save_launch FILE: what before.sh decided, as bash that script.sh sources.
save_launch() {
  declare -p image_path image_id runtime_args jupyter_overlay package_dir package_site \
    py_executable py_minor kernel_names >"$1"
}

# write_jupyter_config FILE HOST PORT PASSWORD PROXY_BASE ORIGINS_JSON [IDLE_MINUTES]: this session's
# Jupyter Server configuration; its base URL is PROXY_BASE (/node/HOST/) followed by the port. The password is kept only as a salted hash, the file is written under umask 077
# (in a subshell, so the caller's umask stays), and printf is a builtin and sha256sum reads stdin:
# the password appears in no process's command line.
write_jupyter_config() {
  local file=$1 host=$2 port=$3 password=$4 proxy_base=$5 origins_json=$6 idle_seconds=$((${7:-0} * 60))
  (
    umask 077
    salt=$(create_passwd 16)
    digest=$(printf '%s' "${password}${salt}" | sha256sum)
    digest=${digest%% *}
    cat >"$file" <<CONFIG
# Written by before.sh for this session only.
import logging
import os
import re
import shutil
import time

from jupyter_server.auth.login import LoginFormHandler


class ConnectButtonLogin(LoginFormHandler):
    """Accept the one cross-site request Open OnDemand's Connect button makes: a POST of the
    password to <base_url>login. Every other request keeps Jupyter's XSRF protection."""

    def check_xsrf_cookie(self):
        return None


# Only the address the portal connects to: not every interface of the node.
c.ServerApp.ip = "${host}"
# The port before.sh chose, or the one script.sh chose instead after another process took it first
# (run_jupyterlab). The portal's URL of the session names the port, and so does the base URL.
port = int(os.environ.get("OOD_JUPYTER_PORT") or ${port})
c.ServerApp.port = port
# Never move to another port by itself: the base URL would no longer match it.
c.ServerApp.port_retries = 0
c.ServerApp.base_url = "${proxy_base}%d/" % port
c.ServerApp.open_browser = False
# Requests arrive through Open OnDemand's proxy, under the proxy's host name.
c.ServerApp.allow_remote_access = True
# Behind a portal that does not preserve the Host header, JupyterLab sees Host HOST:PORT while the
# browser's Origin is the portal: it would refuse every API write and websocket. Allow exactly the
# portal's own origins (site.yml portal.origins), nothing else. \\Z, not \$: \$ also matches before a
# final newline.
c.ServerApp.allow_origin_pat = r"^(%s)\\Z" % "|".join(re.escape(origin) for origin in ${origins_json})
c.ServerApp.identity_provider_class = "jupyter_server.auth.identity.PasswordIdentityProvider"
# No token: it would be printed to output.log. The password is the only way in.
c.IdentityProvider.token = ""
c.PasswordIdentityProvider.hashed_password = "sha256:${salt}:${digest}"
c.PasswordIdentityProvider.password_required = True
c.PasswordIdentityProvider.allow_password_change = False
c.PasswordIdentityProvider.login_handler_class = ConnectButtonLogin

# Terminals: the researcher's login shell if the image has it (many have no tcsh or zsh), else bash,
# with the image kernel's PYTHONPATH (the package directory), so python3 and pip there see it too.
shell = os.environ.get("SHELL", "")
if not (shell and os.access(shell, os.X_OK)):
    shell = shutil.which("bash") or "/bin/sh"
command = [shell]
if "OOD_JUPYTER_KERNEL_PYTHONPATH" in os.environ and shutil.which("env"):
    command = [shutil.which("env"), "PYTHONPATH=" + os.environ["OOD_JUPYTER_KERNEL_PYTHONPATH"], shell]
c.ServerApp.terminado_settings = {"shell_command": command}

# The log, written to output.log: anyone on the cluster can reach this port, and what Jupyter and
# tornado log of a request quotes it (its URL, Referer, Origin: up to 64 KB each; a traceback for each
# API request refused for want of a login). Unbounded, a neighbour could fill the researcher's home
# and push the job's own lines out of the completed view. So: every message is cut to 500 characters
# (URLs and Referers in the access log to 200, tokens in them blanked); requests without a login
# that are not answered 2xx, and the lines tornado and Jupyter log about refused requests, are logged
# 20 a minute at most (then one line saying how many were left out), without tracebacks; successful
# requests only at debug level, as Jupyter does.
refusals = {"minute": 0, "logged": 0, "left_out": 0}


def refusal_logged(log):
    """Whether one more line about a request without a login may be logged this minute."""
    minute = int(time.monotonic() // 60)
    if minute != refusals["minute"]:
        if refusals["left_out"]:
            log.warning("%d more lines about requests without a login were not logged", refusals["left_out"])
        refusals.update(minute=minute, logged=0, left_out=0)
    refusals["logged"] += 1
    if refusals["logged"] > 20:
        refusals["left_out"] += 1
        return False
    return True


def short(text, limit=200):
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    text = re.sub(r"(?i)([?&](?:token|_xsrf)=)[^&]*", r"\\1[hidden]", text)
    return text if len(text) <= limit else text[:limit] + "...(%d more)" % (len(text) - limit)


try:
    from jupyter_server.prometheus.log_functions import prometheus_log_method
except ImportError:
    prometheus_log_method = None


def log_request(handler):
    status = handler.get_status()
    request = handler.request
    log = getattr(handler, "log", None) or logging.getLogger("tornado.access")
    if prometheus_log_method is not None:
        prometheus_log_method(handler)
    user = ""
    try:
        user = getattr(handler.current_user, "username", "") or ""
    except Exception:
        pass
    if status >= 300 and not user and not refusal_logged(log):
        return
    if status < 300 or status == 304:
        method = log.debug
    elif status < 400:
        method = log.info
    elif status < 500:
        method = log.warning
    else:
        method = log.error
    method("%d %s %s (%s@%s) %.2fms%s", status, request.method, short(request.uri), short(user, 64),
           request.remote_ip, 1000.0 * request.request_time(),
           " referer=" + short(request.headers.get("Referer", "None")) if status >= 400 else "",
           extra={"counted": True})


class BoundedLog(logging.Filter):
    """Every record: its message cut to 500 characters. Warnings about a request (tornado's
    "403 POST /path (ip): '_xsrf' argument missing", Jupyter's "Blocking Cross Origin API request for
    /path. Origin: ..." and "wrote error: 'Forbidden'"): within the limit above (log_request's own
    lines are counted there), and without the traceback of a refusal (4xx)."""

    def filter(self, record):
        message = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if 400 <= getattr(error, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        about_a_request = record.levelno >= logging.WARNING and not getattr(record, "counted", False) and (
            record.name.startswith("tornado.") or re.match(r"[0-9]{3} [A-Z]+ ", message)
            or message.startswith("wrote error") or "Cross Origin" in message)
        if about_a_request and not refusal_logged(logging.getLogger("ServerApp")):
            return False
        if len(message) > 500:
            record.msg, record.args = short(message, 500), ()
        return True


c.ServerApp.tornado_settings = {
    "log_function": log_request,
    # JupyterLab's files and API answers compressed (gzip, where the browser asks for it): its first
    # load is about 5 MB uncompressed, most of the wait on a researcher's link.
    "compress_response": True,
    # No bundle build check on every Connect (GET lab/api/build starts node and jlpm, about a second):
    # a JupyterLab in a read-only image can never be rebuilt from the browser anyway.
    "page_config_data": {"buildAvailable": False, "buildCheck": False},
}
# On each logger that writes records (a logger's filters see only its own records, not its children's).
for name in ("ServerApp", "LabApp", "tornado.access", "tornado.application", "tornado.general"):
    logging.getLogger(name).addFilter(BoundedLog())

# Compute nodes often have no network: no news feed, no update check from jupyter.org.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"

# Idle sessions end themselves (the partition's idleMinutes; 0 = never): kernels and terminals idle
# that long are stopped, then JupyterLab shuts down once nothing has happened for that long, so the
# job ends and its GPUs go back.
idle_seconds = ${idle_seconds}
if idle_seconds > 0:
    c.MappingKernelManager.cull_idle_timeout = idle_seconds
    c.MappingKernelManager.cull_interval = min(60, idle_seconds)
    c.MappingKernelManager.cull_connected = True
    c.TerminalManager.cull_inactive_timeout = idle_seconds
    c.TerminalManager.cull_interval = min(60, idle_seconds)
    c.ServerApp.shutdown_no_activity_timeout = idle_seconds
CONFIG
  )
  # The announcements plugin asks every researcher whether to fetch Jupyter news: switched off.
  mkdir -p "${file%/*}/labconfig"
  printf '%s\n' '{ "disabledExtensions": { "@jupyterlab/apputils-extension:announcements": true } }' \
    >"${file%/*}/labconfig/page_config.json"
}

# jupyter_server_port RUNTIME_DIR: the port this session's JupyterLab has taken, from the server
# file it writes once the port is its own (RUNTIME_DIR/jpserver-PID.json); nothing before that.
jupyter_server_port() {
  local file
  for file in "$1"/jpserver-*.json; do
    # The comma: a file read while it is being written never yields a cut-off number.
    [[ -f $file && $(<"$file") =~ \"port\":\ *([0-9]+), ]] && printf '%s\n' "${BASH_REMATCH[1]}" && return 0
  done
  return 1
}

# wait_for_jupyter HOST PORT RUNTIME_DIR TIMEOUT [PID]: return once this session's JupyterLab
# listens, with `port` set to its port (the one before.sh chose, or the one script.sh chose after
# another process took that one). A port that merely accepts connections may be that other
# process's: JupyterLab's own server file says which port is ours. Ends the job with one line if
# PID (script.sh) dies first, if TIMEOUT seconds pass, or if this node has none of the tools OOD's
# port_used tries. Time is measured, not counted in slices; JupyterLab's server file is looked for
# every 50 ms.
wait_for_jupyter() {
  local host=$1 asked=$2 runtime=$3 timeout=$4 pid=${5:-} start=$SECONDS ours status
  while :; do
    if ours=$(jupyter_server_port "$runtime"); then
      # bash's own connect first (a millisecond); OOD's port_used (a program) where it cannot tell.
      if (: <"/dev/tcp/$host/$ours") 2>/dev/null; then
        status=0
      else
        port_used "${host}:${ours}"
        status=$?
      fi
      case $status in
        0) port=$ours; return 0 ;;
        127) say "$msg_no_port_tool" "$(hostname)"; clean_up 1 ;;
      esac
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      # script.sh has said why, unless it could not (killed, or a crash of the runtime itself).
      [[ -e $failure_note ]] || say "$msg_jupyter_not_running"
      clean_up 1
    fi
    if ((SECONDS - start >= timeout)); then
      say "$msg_port_timeout" "$timeout" "${ours:-$asked}"
      clean_up 1
    fi
    # Every 50 ms: the session card turns to Running as soon as JupyterLab has written its server
    # file (after it listens), not up to half a second later. Each look is bash's own glob and read.
    sleep 0.05
  done
}
