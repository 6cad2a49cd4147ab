#!/usr/bin/env bash
# recording-runtime.sh — a STUB container runtime for tests. It is not
# Apptainer. Tests install it on PATH as `apptainer` and `singularity` so that a
# session's script.sh can run without a container runtime, and read back how
# it was called.
#
# What it does:
#   1. Appends its argv as one JSON line to $RECORDING_RUNTIME_LOG: a JSON array
#      of strings, one per argument, in which each character U+0000..U+00FF
#      stands for one byte of the argument (printable ASCII as itself, every
#      other byte as \u00XX) — so every argument's bytes come back exactly.
#      Decode with Buffer.from(s, "latin1") (ood.ts#readRecordedRuns does).
#      The variable is required: without it the stub fails (exit 70).
#   2. If the command runs JupyterLab (`python3 -m jupyterlab`, `jupyter lab`,
#      `jupyter-lab`, ood-jupyter's `python3 -c "…runpy.run_module(…)" jupyterlab`) with a `--port=N` / `--ServerApp.port=N` (or the
#      `--port N` form, or a `--config=FILE` that sets c.ServerApp.port, where
#      $OOD_JUPYTER_PORT overrides the file as in ood-jupyter's configuration),
#      it plays a fake JupyterLab: it writes a server file
#      $JUPYTER_RUNTIME_DIR/jpserver-PID.json naming the port (where that
#      variable is set), as Jupyter Server does, and only accepts TCP connections
#      on 0.0.0.0:N (with python3, else node), for at most
#      $RECORDING_RUNTIME_LISTEN_SECONDS seconds (default 60), so a wrapper's
#      after.sh `wait_until_port_used` can succeed. Set
#      RECORDING_RUNTIME_LISTEN=0 to never listen.
#   3. If the command is the job's image probe (`python3 -c CODE probe`, CODE naming
#      jupyter_server), it prints $RECORDING_RUNTIME_PROBE, `name=version` lines
#      (default: a current image with Jupyter Server 2 and JupyterLab 4). Asked
#      for the researcher's environments (`python3 -c CODE environments DIR...`),
#      it prints $RECORDING_RUNTIME_ENVIRONMENTS (default: nothing).
#   4. Otherwise exits with $RECORDING_RUNTIME_EXIT (default 0).
set -u

# One argument as a JSON string whose code points are its bytes.
json_bytes() {
  local LC_ALL=C
  local arg="$1" out="" char code i
  for ((i = 0; i < ${#arg}; i++)); do
    char="${arg:i:1}"
    printf -v code '%d' "'${char}"
    if ((code < 0)); then code=$((code + 256)); fi
    if [[ "${char}" == '"' || "${char}" == "\\" ]]; then
      out+="\\${char}"
    elif ((code >= 32 && code < 127)); then
      out+="${char}"
    else
      printf -v char '\\u%04x' "${code}"
      out+="${char}"
    fi
  done
  printf '"%s"' "${out}"
}

record_argv() {
  local line="[" first=1 arg
  for arg in "$0" "$@"; do
    if ((first)); then first=0; else line+=","; fi
    line+=$(json_bytes "${arg}")
  done
  printf '%s]\n' "${line}" >> "${RECORDING_RUNTIME_LOG}"
}

# The port a JupyterLab command line asks for, or nothing.
jupyter_port() {
  local is_jupyter=0 previous="" arg port=""
  for arg in "$@"; do
    case "${previous} ${arg}" in
      "-m jupyterlab" | "jupyter lab" | *" jupyter-lab" | *"/jupyter-lab") is_jupyter=1 ;;
      # ood-jupyter's `python3 -s -c "$python_module_main" jupyterlab`: python3 -m without the cwd on sys.path.
      *"runpy.run_module("*" jupyterlab") is_jupyter=1 ;;
    esac
    case "${arg}" in
      --port=* | --ServerApp.port=*) port="${arg#*=}" ;;
      # A Jupyter config file (ood-jupyter's before.sh writes one) names the port as c.ServerApp.port = N.
      # ood-jupyter's reads OOD_JUPYTER_PORT first: port = int(os.environ.get("OOD_JUPYTER_PORT") or N).
      --config=*)
        port=${OOD_JUPYTER_PORT:-}
        [[ -n "${port}" ]] || port=$(sed -n -e 's/^c\.ServerApp\.port = \([0-9][0-9]*\)$/\1/p' \
          -e 's/^port = int(os\.environ\.get("OOD_JUPYTER_PORT") or \([0-9][0-9]*\))$/\1/p' "${arg#*=}" 2>/dev/null)
        ;;
    esac
    if [[ "${previous}" == "--port" || "${previous}" == "--ServerApp.port" ]]; then port="${arg}"; fi
    previous="${arg}"
  done
  if ((is_jupyter)) && [[ "${port}" =~ ^[0-9]+$ ]]; then echo "${port}"; fi
}

# Accept and drop connections on 0.0.0.0:$1 for $2 seconds.
fake_jupyterlab() {
  local port="$1" seconds="$2"
  echo "recording-runtime (stub): fake JupyterLab listening on port ${port} for ${seconds}s" >&2
  if [[ -n "${JUPYTER_RUNTIME_DIR:-}" ]]; then
    printf '{\n  "pid": %s,\n  "port": %s,\n  "url": "stub"\n}' "$$" "${port}" > "${JUPYTER_RUNTIME_DIR}/jpserver-$$.json"
  fi
  if command -v python3 > /dev/null 2>&1; then
    exec python3 -c '
import socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(16)
server.settimeout(0.5)
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        conn, _ = server.accept()
        conn.close()
    except socket.timeout:
        pass
' "${port}" "${seconds}"
  elif command -v node > /dev/null 2>&1; then
    exec node -e '
const server = require("net").createServer((socket) => socket.destroy());
server.listen(Number(process.argv[1]), "0.0.0.0");
setTimeout(() => process.exit(0), Number(process.argv[2]) * 1000);
' "${port}" "${seconds}"
  else
    echo "recording-runtime (stub): neither python3 nor node to listen with" >&2
    exit 127
  fi
}

main() {
  if [[ -z "${RECORDING_RUNTIME_LOG:-}" ]]; then
    echo "recording-runtime (stub): RECORDING_RUNTIME_LOG is not set" >&2
    exit 70
  fi
  record_argv "$@"
  local arg previous="" probing=0
  for arg in "$@"; do
    if ((probing)); then
      if [[ "${arg}" == environments ]]; then
        printf '%s' "${RECORDING_RUNTIME_ENVIRONMENTS-}"
        exit 0
      fi
      break
    fi
    if [[ "${previous}" == "-c" && "${arg}" == *jupyter_server* ]]; then
      probing=1
    fi
    previous="${arg}"
  done
  if ((probing)); then
    printf '%s\n' "${RECORDING_RUNTIME_PROBE-executable=/usr/bin/python3
python=3.12.3
jupyter_server=2.15.0
jupyterlab=4.2.5
ipykernel=6.29.5
pip=24.0
user_site=lib/python3.12/site-packages}"
    exit 0
  fi
  local port
  port=$(jupyter_port "$@")
  if [[ -n "${port}" && "${RECORDING_RUNTIME_LISTEN:-1}" != "0" ]]; then
    fake_jupyterlab "${port}" "${RECORDING_RUNTIME_LISTEN_SECONDS:-60}"
  fi
  exit "${RECORDING_RUNTIME_EXIT:-0}"
}

main "$@"
