# shellcheck shell=bash
# The msg_* sentences are defined in messages.sh, which every script sources first.
# shellcheck disable=SC2154
# The session's job logic as plain bash functions: sourced by before.sh (in the job's own shell,
# so after.sh has them too) and by script.sh. Copied into the app as it is: no template engine
# touches this file, and it reads no form value. The values come from settings.sh, the sentences
# from messages.sh.

# Print one of this app's messages (a printf format from messages.sh) as one plain line.
say() {
  local format=$1
  shift
  # shellcheck disable=SC2059 # the format is one of the app's own messages
  printf "${format}\n" "$@"
}

# Where a script that already said why the session failed leaves a note, so after.sh (which sees
# script.sh end) adds no second line. Both scripts source this file in the session directory.
failure_note="$PWD/jupyter/failed"

# fail FORMAT ARGS...: say it, note it, and end the script with status 1.
fail() {
  report_failure "$@"
  exit 1
}

# report_failure FORMAT ARGS...: the one line a broken session prints, noted for after.sh.
report_failure() {
  say "$@"
  mkdir -p "${failure_note%/*}" && : >"$failure_note"
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

# choose_port HOST: set `port` to a free port on HOST (OOD's find_port), or end the job with one
# line (an empty port would otherwise become a syntax error in the Python configuration).
choose_port() {
  port=$(find_port "$1")
  if [[ ! $port =~ ^[0-9]+$ ]]; then
    fail "$msg_no_free_port" "$(hostname)"
  fi
}

# probe_image RUNTIME IMAGE RUNTIME_ARG...: what the image's python3 offers, as `name=version`
# lines (an empty version: not importable). -s leaves ~/.local out, as for JupyterLab itself.
probe_image() {
  local runtime=$1 image=$2
  shift 2
  "$runtime" exec "$@" "$image" python3 -s -c '
import importlib, sys
print("python=%d.%d.%d" % sys.version_info[:3])
for name in ("jupyter_server", "jupyterlab", "ipykernel"):
    try:
        version = getattr(importlib.import_module(name), "__version__", "unknown")
    except Exception:
        version = ""
    print("%s=%s" % (name, version))
' 2>/dev/null
}

# check_image RUNTIME IMAGE RUNTIME_ARG...: end the job with one line if the image cannot run this
# session's JupyterLab (no python3, no JupyterLab or ipykernel, or a Jupyter Server older than 2,
# which lacks the login and identity classes the session's configuration uses).
check_image() {
  local image=$2 report name version server='' lab='' kernel=''
  report=$(probe_image "$@") || report=''
  while IFS='=' read -r name version; do
    case $name in
      jupyter_server) server=$version ;;
      jupyterlab) lab=$version ;;
      ipykernel) kernel=$version ;;
    esac
  done <<<"$report"
  if [[ -n $server && ${server%%.*} =~ ^[01]$ ]]; then
    fail "$msg_old_jupyter_server" "$image" "$server"
  fi
  if [[ -z $lab || -z $kernel || -z $server ]]; then
    fail "$msg_no_jupyter_lab" "$image"
  fi
}

# write_jupyter_config FILE HOST PORT PASSWORD BASE_URL ORIGINS_JSON: this session's Jupyter Server
# configuration. The password is kept only as a salted hash, the file is written under umask 077
# (in a subshell, so the caller's umask stays), and printf is a builtin and sha256sum reads stdin:
# the password appears in no process's command line.
write_jupyter_config() {
  local file=$1 host=$2 port=$3 password=$4 base_url=$5 origins_json=$6
  (
    umask 077
    salt=$(create_passwd 16)
    digest=$(printf '%s' "${password}${salt}" | sha256sum)
    digest=${digest%% *}
    cat >"$file" <<CONFIG
# Written by before.sh for this session only.
import os
import re
import shutil

from jupyter_server.auth.login import LoginFormHandler


class ConnectButtonLogin(LoginFormHandler):
    """Accept the one cross-site request Open OnDemand's Connect button makes: a POST of the
    password to <base_url>login. Every other request keeps Jupyter's XSRF protection."""

    def check_xsrf_cookie(self):
        return None


# Only the address the portal connects to: not every interface of the node.
c.ServerApp.ip = "${host}"
c.ServerApp.port = ${port}
# Never move to another port: connection.yml (and so the Connect button) names this one.
c.ServerApp.port_retries = 0
c.ServerApp.base_url = "${base_url}"
c.ServerApp.open_browser = False
# Requests arrive through Open OnDemand's proxy, under the proxy's host name.
c.ServerApp.allow_remote_access = True
# Behind a portal that does not preserve the Host header, JupyterLab sees Host HOST:PORT while the
# browser's Origin is the portal: it would refuse every API write and websocket. Allow exactly the
# portal's own origins (site.yml portal.origins), nothing else.
c.ServerApp.allow_origin_pat = "^(%s)\$" % "|".join(re.escape(origin) for origin in ${origins_json})
c.ServerApp.identity_provider_class = "jupyter_server.auth.identity.PasswordIdentityProvider"
# No token: it would be printed to output.log. The password is the only way in.
c.IdentityProvider.token = ""
c.PasswordIdentityProvider.hashed_password = "sha256:${salt}:${digest}"
c.PasswordIdentityProvider.password_required = True
c.PasswordIdentityProvider.allow_password_change = False
c.PasswordIdentityProvider.login_handler_class = ConnectButtonLogin

# Terminals: the researcher's login shell if the image has it (many have no tcsh or zsh), else bash.
shell = os.environ.get("SHELL", "")
if not (shell and os.access(shell, os.X_OK)):
    shell = shutil.which("bash") or "/bin/sh"
c.ServerApp.terminado_settings = {"shell_command": [shell]}

# Compute nodes often have no network: no news feed, no update check from jupyter.org.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
CONFIG
  )
  # The announcements plugin asks every researcher whether to fetch Jupyter news: switched off.
  mkdir -p "${file%/*}/labconfig"
  printf '%s\n' '{ "disabledExtensions": { "@jupyterlab/apputils-extension:announcements": true } }' \
    >"${file%/*}/labconfig/page_config.json"
}

# wait_for_jupyter HOST PORT TIMEOUT [PID]: return once HOST:PORT accepts connections; end the job
# with one line if PID (script.sh) dies first, if TIMEOUT seconds pass, or if this node has none of
# the tools OOD's port_used tries. Time is measured, not counted in slices.
wait_for_jupyter() {
  local host=$1 port=$2 timeout=$3 pid=${4:-} start=$SECONDS status
  while :; do
    port_used "${host}:${port}"
    status=$?
    case $status in
      0) return 0 ;;
      127) say "$msg_no_port_tool" "$(hostname)"; clean_up 1 ;;
    esac
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      # script.sh has said why, unless it could not (killed, or a crash of the runtime itself).
      [[ -e $failure_note ]] || say "$msg_jupyter_not_running"
      clean_up 1
    fi
    if ((SECONDS - start >= timeout)); then
      say "$msg_port_timeout" "$port" "$timeout"
      clean_up 1
    fi
    sleep 0.5
  done
}
