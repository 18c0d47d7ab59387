#!/usr/bin/env bash
# SDK compatibility test: runs the official Python SDK (ory-kratos-client) against a
# freshly started Portcullis server backed by a throwaway SQLite database.
#
# Usage: tests/sdk/run.sh [PATH_TO_PORTCULLIS_BINARY [EXTRA_ARGS...]]
#   PATH_TO_PORTCULLIS_BINARY defaults to target/debug/portcullis (relative to the repo root);
#   EXTRA_ARGS go to identities.py, sessions.py, native_flows.py, browser_flows.py and recovery_settings.py,
#   e.g. --keep-going to run every section (and each script even when an earlier one failed) and list all
#   failures.
# sessions.py issues sessions with `portcullis sessions issue`, so it gets the binary, the config file and
# the server's DSN (in the environment). native_flows.py signs up, in and out through the native (API)
# self-service flows; the config enables the registration session hook for it and turns off the Have I
# Been Pwned look-up so that no network is used. browser_flows.py does the same through the browser flows
# in JSON (SPA) mode, keeping the CSRF and session cookies in a cookie jar of its own.
# recovery_settings.py covers the settings, recovery and verification flows, the admin recovery code and link
# and the courier API. For it the config enables recovery and verification (code method), the link method
# (admin recovery links) and the courier's delivery over SMTP to the SMTP sink (tests/support/smtp_sink.py),
# which writes every mail it receives to a directory the script reads codes and links from. After the other
# scripts, the server is restarted with feature_flags.use_continue_with_transitions (recovery then answers
# 200 with continue_with instead of 422) and the link method off, and recovery_settings.py runs again for the
# sections that this changes.
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
MAIL_DIR="$SERVER_TMP/mail"
MAIL_FROM="no-reply@portcullis.test"

# The SMTP sink the courier delivers to, on a port the OS picks.
server_start_smtp_sink "$MAIL_DIR" || exit 1
echo "sdk: SMTP sink on port $SMTP_PORT, mails in $MAIL_DIR"

# Distinct free ports, chosen by the OS.
server_free_ports PUBLIC_PORT ADMIN_PORT API_PORT PROXY_PORT

# write_config FILE METHODS_YAML [EXTRA_YAML]: the server config, with METHODS_YAML as selfservice.methods.
write_config() {
  cat >"$1" <<YAML
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
courier:
  smtp:
    connection_uri: "$SMTP_URI"
    from_address: $MAIL_FROM
selfservice:
  flows:
    registration:
      after:
        password:
          hooks:
            - hook: session
    recovery: {enabled: true, use: code}
    verification: {enabled: true, use: code}
  methods:
$2
${3:-}
YAML
}

# The password method is on by default (as in Kratos): only its config is given.
write_config "$CONFIG" '    link: {enabled: true}
    password:
      config:
        haveibeenpwned_enabled: false'

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
RECOVERY_ARGS=(--admin "$ADMIN" --public "$PUBLIC" --mail-dir "$MAIL_DIR" --mail-from "$MAIL_FROM")
if [[ $status -eq 0 || $keep_going -eq 1 ]]; then
  "$VENV/bin/python" tests/sdk/recovery_settings.py "${RECOVERY_ARGS[@]}" "${@:2}"
  recovery_status=$?
  [[ $recovery_status -ne 0 ]] && status=$recovery_status
else
  echo "sdk: skipping recovery_settings.py because an earlier script failed (pass --keep-going to run it anyway)" >&2
fi
set -e

# ---- The same server with use_continue_with_transitions and without the link method. ----
if [[ $status -eq 0 || $keep_going -eq 1 ]]; then
  kill "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
  if [[ $status -ne 0 ]]; then  # the cleanup trap shows only the log of the server running at the end
    echo "---- portcullis server log ($SERVER_LOG) ----" >&2
    cat "$SERVER_LOG" >&2 || true
    echo "---- end of server log ----" >&2
  fi
  SERVER_LOG="$SERVER_TMP/server-transitions.log"
  # Here the password method is switched on explicitly, and the link method off.
  write_config "$SERVER_TMP/config-transitions.yml" '    link: {enabled: false}
    password:
      enabled: true
      config:
        haveibeenpwned_enabled: false' 'feature_flags:
  use_continue_with_transitions: true'
  echo "sdk: restarting $BIN with feature_flags.use_continue_with_transitions and the link method off"
  server_start "$BIN" "$SERVER_TMP/config-transitions.yml" "$DSN"
  server_wait_ready "$ADMIN/admin/health/ready" || exit 1
  set +e
  "$VENV/bin/python" tests/sdk/recovery_settings.py "${RECOVERY_ARGS[@]}" --continue-with-transitions --link-disabled \
    --sections recovery,admin-code,admin-link-disabled "${@:2}"
  transitions_status=$?
  [[ $transitions_status -ne 0 ]] && status=$transitions_status
  set -e
else
  echo "sdk: skipping the use_continue_with_transitions run because an earlier script failed (pass --keep-going to run it anyway)" >&2
fi
exit "$status"
