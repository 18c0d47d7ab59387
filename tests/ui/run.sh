#!/usr/bin/env bash
# Real-browser UI test: drives headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
# through the built-in self-service UI (/ui/*) of a freshly started Portcullis server backed by a
# throwaway SQLite database, with JavaScript enabled and disabled. See tests/ui/ui.test.mjs.
#
# Usage: tests/ui/run.sh [PATH_TO_PORTCULLIS_BINARY]
#   PATH_TO_PORTCULLIS_BINARY defaults to target/debug/portcullis (relative to the repo root).
# Needs node (>= 20) and npm, python3 (used by tests/support/server.sh), and Chromium at /usr/bin/chromium
# (apt-get install -y chromium).
# Screenshots of every checked page are written to target/ui-screenshots/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# shellcheck source=../support/server.sh
source "$ROOT/tests/support/server.sh"
server_init ui
server_resolve_bin "${1:-}"
BIN="$SERVER_BIN"

CHROMIUM=/usr/bin/chromium
if [[ ! -x "$CHROMIUM" ]]; then
  echo "ui: Chromium not found at $CHROMIUM; install Debian's package: apt-get update && apt-get install -y chromium" >&2
  exit 2
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "ui: $tool not found; install Node.js >= 20 with npm" >&2
    exit 2
  fi
done

# (Re)install node_modules when missing or installed from another package-lock.json.
UI_DIR="$ROOT/tests/ui"
STAMP="$UI_DIR/node_modules/.portcullis-package-lock.json"
if [[ ! -d "$UI_DIR/node_modules/playwright-core" ]] || ! cmp -s "$UI_DIR/package-lock.json" "$STAMP"; then
  echo "ui: installing node modules (npm ci)"
  (cd "$UI_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$UI_DIR/package-lock.json" "$STAMP"
fi

SHOTS="$ROOT/target/ui-screenshots"
mkdir -p "$SHOTS"

server_setup_tmp
CONFIG="$SERVER_TMP/config.yml"

# Two distinct free ports, chosen by the OS (both held open until both are known).
server_free_ports PUBLIC_PORT ADMIN_PORT API_PORT PROXY_PORT

cat > "$CONFIG" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
  api: {host: 127.0.0.1, port: $API_PORT}
  proxy: {host: 127.0.0.1, port: $PROXY_PORT}
log: {level: warn}
hashers: {algorithm: bcrypt, bcrypt: {cost: 4}}
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

# --dev: plain-http (non-Secure) cookies, and allows bcrypt cost 4.
echo "ui: starting $BIN (public $PUBLIC, admin $ADMIN)"
server_start "$BIN" "$CONFIG" "sqlite://$SERVER_TMP/db.sqlite?mode=rwc" --dev

# Readiness poll, bounded to ~30 s; gives up early if the server process exits.
server_wait_ready "$ADMIN/admin/health/ready" || exit 1

node tests/ui/ui.test.mjs --public "$PUBLIC" --screenshots "$SHOTS"
