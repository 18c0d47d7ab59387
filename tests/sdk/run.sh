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

# shellcheck source=../support/server.sh
source "$ROOT/tests/support/server.sh"
server_init sdk
server_resolve_bin "${1:-}"
BIN="$SERVER_BIN"

VENV="$ROOT/target/sdk-venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "sdk: creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt

server_setup_tmp
CONFIG="$SERVER_TMP/config.yml"

# Two distinct free ports, chosen by the OS.
server_free_ports PUBLIC_PORT ADMIN_PORT API_PORT PROXY_PORT

cat > "$CONFIG" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
  api: {host: 127.0.0.1, port: $API_PORT}
  proxy: {host: 127.0.0.1, port: $PROXY_PORT}
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
DSN="sqlite://$SERVER_TMP/db.sqlite?mode=rwc"

echo "sdk: starting $BIN (public $PUBLIC, admin $ADMIN)"
server_start "$BIN" "$CONFIG" "$DSN"

# Readiness poll, bounded to ~30 s; gives up early if the server process exits.
server_wait_ready "$ADMIN/admin/health/ready" || exit 1

keep_going=0
for arg in "${@:2}"; do
  [[ "$arg" == "--keep-going" ]] && keep_going=1
done

set +e
"$VENV/bin/python" tests/sdk/identities.py --admin "$ADMIN" --public "$PUBLIC" "${@:2}"
status=$?
if [[ $status -eq 0 || $keep_going -eq 1 ]]; then
  DSN="$DSN" "$VENV/bin/python" tests/sdk/sessions.py --admin "$ADMIN" --public "$PUBLIC" \
    --bin "$BIN" --config "$CONFIG" "${@:2}"
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
