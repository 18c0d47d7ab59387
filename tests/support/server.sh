# shellcheck shell=bash
# Shared helpers for the scripts that run external test suites against a real Portcullis server
# (tests/sdk/run.sh, tests/ui/run.sh). Source it after `set -euo pipefail`; it changes no shell options.
#
#   source "$ROOT/tests/support/server.sh"
#   server_init sdk                          # message prefix; checks that python3 is there (else exit 2)
#   server_resolve_bin "${1:-}"              # -> SERVER_BIN (absolute); exit 2 when missing
#   ...                                      # suite-specific preparation
#   server_setup_tmp                         # -> SERVER_TMP, SERVER_LOG; installs the EXIT/INT/TERM traps
#   server_free_ports PUBLIC_PORT ADMIN_PORT # sets the named variables to distinct free ports
#   ...                                      # write "$SERVER_TMP/config.yml"
#   server_start "$SERVER_BIN" "$SERVER_TMP/config.yml" "$DSN" [--dev ...]   # -> SERVER_PID
#   server_wait_ready "$ADMIN/admin/health/ready" || exit 1
#
# Suites that need e-mail start the SMTP sink (tests/support/smtp_sink.py) after server_setup_tmp:
#   server_start_smtp_sink "$SERVER_TMP/mail"  # -> SMTP_PORT, SMTP_URI (courier.smtp.connection_uri)
#
# On exit the cleanup trap stops the server (and the SMTP sink), prints its log when the exit status is not 0 and removes
# SERVER_TMP; it keeps the script's exit status (130 on SIGINT, 143 on SIGTERM).
# Port picking and the readiness poll use python3 (override with SERVER_PYTHON).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "tests/support/server.sh is meant to be sourced, not run" >&2
  exit 2
fi

SERVER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVER_TAG="server"
SERVER_PYTHON="${SERVER_PYTHON:-python3}"
SERVER_BIN=""
SERVER_TMP=""
SERVER_LOG=""
SERVER_PID=""
SMTP_PID=""
SMTP_LOG=""
SMTP_PORT=""
SMTP_URI=""

# server_init TAG: sets the prefix of every message ("sdk", "ui") and checks for python3.
server_init() {
  SERVER_TAG="$1"
  if ! command -v "$SERVER_PYTHON" >/dev/null; then
    echo "$SERVER_TAG: $SERVER_PYTHON not found; it is needed to pick free ports and poll the server's readiness" >&2
    exit 2
  fi
}

# server_resolve_bin [PATH]: PATH defaults to target/debug/portcullis; a relative PATH is taken relative to
# the repository root. Sets SERVER_BIN, or exits 2 when it is not an executable file.
server_resolve_bin() {
  local bin="${1:-target/debug/portcullis}"
  case "$bin" in
    /*) ;;
    *) bin="$SERVER_ROOT/$bin" ;;
  esac
  if [[ ! -x "$bin" ]]; then
    echo "$SERVER_TAG: portcullis binary not found or not executable: $bin (build it with: cargo build -p proxy)" >&2
    exit 2
  fi
  SERVER_BIN="$bin"
}

# server_cleanup: the EXIT trap. Stops the server, shows its log on failure, removes SERVER_TMP.
server_cleanup() {
  local status=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$SMTP_PID" ]] && kill -0 "$SMTP_PID" 2>/dev/null; then
    kill "$SMTP_PID" 2>/dev/null || true
    wait "$SMTP_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -n "$SERVER_LOG" && -f "$SERVER_LOG" ]]; then
    echo "---- portcullis server log ($SERVER_LOG) ----" >&2
    cat "$SERVER_LOG" >&2 || true
    echo "---- end of server log ----" >&2
  fi
  if [[ $status -ne 0 && -n "$SMTP_LOG" && -s "$SMTP_LOG" ]]; then
    echo "---- SMTP sink log ($SMTP_LOG) ----" >&2
    cat "$SMTP_LOG" >&2 || true
    echo "---- end of SMTP sink log ----" >&2
  fi
  if [[ -n "$SERVER_TMP" ]]; then
    rm -rf "$SERVER_TMP"
  fi
  exit "$status"
}

# server_setup_tmp: creates the temporary directory SERVER_TMP (config, database, SERVER_LOG) and installs
# the cleanup traps.
server_setup_tmp() {
  SERVER_TMP="$(mktemp -d)"
  SERVER_LOG="$SERVER_TMP/server.log"
  SERVER_PID=""
  trap server_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# server_free_ports VAR...: sets each named variable to a distinct free TCP port on 127.0.0.1, chosen by
# the OS (all held open until all are known).
server_free_ports() {
  local _sfp_out _sfp_var _sfp_i=0
  local -a _sfp_ports
  _sfp_out="$("$SERVER_PYTHON" - "$#" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)" || return 1
  read -r -a _sfp_ports <<<"$_sfp_out"
  if [[ ${#_sfp_ports[@]} -ne $# ]]; then
    echo "$SERVER_TAG: could not pick $# free ports (got: $_sfp_out)" >&2
    return 1
  fi
  for _sfp_var in "$@"; do
    printf -v "$_sfp_var" '%s' "${_sfp_ports[_sfp_i]}"
    _sfp_i=$((_sfp_i + 1))
  done
}

# server_start_smtp_sink MAILDIR: starts the SMTP sink (tests/support/smtp_sink.py) on a port the OS picks,
# writing one JSON file per received mail to MAILDIR; waits up to 10 s until it listens. Sets SMTP_PORT,
# SMTP_URI (plain SMTP, for courier.smtp.connection_uri) and SMTP_PID; the cleanup trap stops it. Its log is
# SERVER_TMP/smtp.log (shown on failure).
server_start_smtp_sink() {
  local dir="$1" port_file i
  if [[ -z "$SERVER_TMP" ]]; then
    echo "$SERVER_TAG: server_setup_tmp must run before server_start_smtp_sink" >&2
    return 1
  fi
  port_file="$SERVER_TMP/smtp.port"
  SMTP_LOG="$SERVER_TMP/smtp.log"
  rm -f "$port_file"
  "$SERVER_PYTHON" "$SERVER_ROOT/tests/support/smtp_sink.py" serve --dir "$dir" --port-file "$port_file" \
    >"$SMTP_LOG" 2>&1 &
  SMTP_PID=$!
  for ((i = 0; i < 100; i++)); do
    if [[ -s "$port_file" ]]; then
      SMTP_PORT="$(<"$port_file")"
      SMTP_URI="smtp://127.0.0.1:$SMTP_PORT/?disable_starttls=true"
      return 0
    fi
    if ! kill -0 "$SMTP_PID" 2>/dev/null; then
      echo "$SERVER_TAG: the SMTP sink exited before listening:" >&2
      cat "$SMTP_LOG" >&2 || true
      SMTP_PID=""
      return 1
    fi
    sleep 0.1
  done
  echo "$SERVER_TAG: the SMTP sink did not listen within 10 s" >&2
  return 1
}

# server_start BIN CONFIG DSN [ARGS...]: starts `BIN serve ARGS... --config CONFIG` in the background with
# DSN in its environment and its output in SERVER_LOG. Sets SERVER_PID.
server_start() {
  local bin="$1" config="$2" dsn="$3"
  shift 3
  if [[ -z "$SERVER_LOG" ]]; then
    echo "$SERVER_TAG: server_setup_tmp must run before server_start" >&2
    return 1
  fi
  DSN="$dsn" "$bin" serve "$@" --config "$config" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
}

# server_wait_ready URL [SECONDS]: polls URL until it answers 200, for up to SECONDS (default 30). Fails
# (status 1) on time-out, or at once when the server process exits first.
server_wait_ready() {
  local url="$1" timeout="${2:-30}" rc=0 status=0
  "$SERVER_PYTHON" - "$SERVER_TAG" "$url" "$SERVER_PID" "$timeout" <<'PY' || rc=$?
import os, sys, time, urllib.request
tag, url, pid, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

def alive():
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:  # an exited, not yet reaped child is a zombie
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no procfs: rely on kill(pid, 0) alone
    except OSError:
        return False

deadline = time.monotonic() + timeout
last = "no answer yet"
while time.monotonic() < deadline:
    if not alive():
        sys.exit(3)
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
            last = f"HTTP {r.status}"
    except Exception as e:  # connection refused while starting, or a non-2xx status
        last = repr(e)
    time.sleep(0.2)
print(f"{tag}: the server did not become ready at {url} within {timeout:g} s (last: {last})", file=sys.stderr)
sys.exit(1)
PY
  case $rc in
    0) return 0 ;;
    3)
      wait "$SERVER_PID" 2>/dev/null || status=$?
      SERVER_PID=""
      echo "$SERVER_TAG: the server exited before becoming ready (exit status $status)" >&2
      ;;
  esac
  return 1
}
