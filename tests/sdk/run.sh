#!/usr/bin/env bash
# SDK compatibility test: runs the official Python SDK (ory-kratos-client) against a
# freshly started Portcullis server backed by a throwaway SQLite database.
#
# Usage: tests/sdk/run.sh [PATH_TO_PORTCULLIS_BINARY [EXTRA_ARGS...]]
#   PATH_TO_PORTCULLIS_BINARY defaults to target/debug/portcullis (relative to the repo root);
#   EXTRA_ARGS go to identities.py, sessions.py, native_flows.py and browser_flows.py, e.g. --keep-going
#   to run every section (and each script even when an earlier one failed) and list all failures.
# sessions.py issues sessions with `portcullis sessions issue`, so it gets the binary, the config file and
# the server's DSN (in the environment). native_flows.py signs up, in and out through the native (API)
# self-service flows; the config enables the registration session hook for it and turns off the Have I
# Been Pwned look-up so that no network is used. browser_flows.py does the same through the browser flows
# in JSON (SPA) mode, keeping the CSRF and session cookies in a cookie jar of its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BIN="${1:-target/debug/portcullis}"
case "$BIN" in
  /*) ;;
  *) BIN="$ROOT/$BIN" ;;
esac
if [[ ! -x "$BIN" ]]; then
  echo "sdk: portcullis binary not found or not executable: $BIN (build it with: cargo build -p proxy)" >&2
  exit 2
fi

VENV="$ROOT/target/sdk-venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "sdk: creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt

TMP="$(mktemp -d)"
SERVER_PID=""
LOG="$TMP/server.log"

cleanup() {
  local status=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -f "$LOG" ]]; then
    echo "---- portcullis server log ($LOG) ----" >&2
    cat "$LOG" >&2 || true
    echo "---- end of server log ----" >&2
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two distinct free ports, chosen by the OS.
read -r PUBLIC_PORT ADMIN_PORT < <("$VENV/bin/python" - <<'PY'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)

cat > "$TMP/config.yml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
hashers:
  algorithm: bcrypt
  bcrypt: {cost: 12}
log: {level: warn}
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file://$ROOT/tests/sdk/schema.json
selfservice:
  flows:
    registration:
      after:
        password:
          hooks:
            - hook: session
  methods:
    password:
      config:
        haveibeenpwned_enabled: false
YAML

ADMIN="http://127.0.0.1:$ADMIN_PORT"
PUBLIC="http://127.0.0.1:$PUBLIC_PORT"

# The server and sessions.py (through `portcullis sessions issue`) share this database.
DSN="sqlite://$TMP/db.sqlite?mode=rwc"

echo "sdk: starting $BIN (public $PUBLIC, admin $ADMIN)"
DSN="$DSN" "$BIN" serve --config "$TMP/config.yml" >"$LOG" 2>&1 &
SERVER_PID=$!

# Readiness poll, bounded to ~30 s; gives up early if the server process exits.
if ! "$VENV/bin/python" - "$ADMIN/admin/health/ready" "$SERVER_PID" <<'PY'
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
last = "no answer yet"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:  # an exited, not yet reaped child is a zombie
            alive = f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        alive = True  # no procfs: rely on kill(pid, 0) alone
    except OSError:
        alive = False
    if not alive:
        print("sdk: the server exited before becoming ready", file=sys.stderr)
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
            last = f"HTTP {r.status}"
    except Exception as e:  # connection refused while starting, or a non-2xx status
        last = repr(e)
    time.sleep(0.2)
print(f"sdk: the server did not become ready at {url} within 30 s (last: {last})", file=sys.stderr)
sys.exit(1)
PY
then
  exit 1
fi

keep_going=0
for arg in "${@:2}"; do
  [[ "$arg" == "--keep-going" ]] && keep_going=1
done

set +e
"$VENV/bin/python" tests/sdk/identities.py --admin "$ADMIN" --public "$PUBLIC" "${@:2}"
status=$?
if [[ $status -eq 0 || $keep_going -eq 1 ]]; then
  DSN="$DSN" "$VENV/bin/python" tests/sdk/sessions.py --admin "$ADMIN" --public "$PUBLIC" \
    --bin "$BIN" --config "$TMP/config.yml" "${@:2}"
  sessions_status=$?
  [[ $sessions_status -ne 0 ]] && status=$sessions_status
else
  echo "sdk: skipping sessions.py because identities.py failed (pass --keep-going to run it anyway)" >&2
fi
if [[ $status -eq 0 || $keep_going -eq 1 ]]; then
  "$VENV/bin/python" tests/sdk/native_flows.py --admin "$ADMIN" --public "$PUBLIC" "${@:2}"
  flows_status=$?
  [[ $flows_status -ne 0 ]] && status=$flows_status
else
  echo "sdk: skipping native_flows.py because an earlier script failed (pass --keep-going to run it anyway)" >&2
fi
if [[ $status -eq 0 || $keep_going -eq 1 ]]; then
  "$VENV/bin/python" tests/sdk/browser_flows.py --admin "$ADMIN" --public "$PUBLIC" "${@:2}"
  browser_status=$?
  [[ $browser_status -ne 0 ]] && status=$browser_status
else
  echo "sdk: skipping browser_flows.py because an earlier script failed (pass --keep-going to run it anyway)" >&2
fi
set -e
exit "$status"
