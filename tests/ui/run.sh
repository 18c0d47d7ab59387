#!/usr/bin/env bash
# Real-browser tests in headless Chromium (Debian's /usr/bin/chromium, through playwright-core), each against
# a freshly started Portcullis server backed by a throwaway SQLite database, with JavaScript enabled and
# disabled:
#   1. tests/ui/ui.test.mjs: the built-in self-service UI (/ui/*) on the public listener;
#   2. tests/ui/recovery.test.mjs: "forgot password -> mail -> code -> new password -> signed in" in that UI, on the
#      same server, with the code read from the mail that the courier delivered over SMTP to the SMTP sink
#      (tests/support/smtp_sink.py, which writes one JSON file per mail to a directory the test reads);
#   3. tests/ui/proxy.test.mjs: the edge proxy (serve.proxy) in front of an upstream that the test script
#      serves itself, with the whole journey (sign-up, login redirect and return, identity headers, sign-out)
#      on the proxy's origin, which is also the public base URL. This server gets its own config and ports.
#
# Usage: tests/ui/run.sh [PATH_TO_PORTCULLIS_BINARY]
#   PATH_TO_PORTCULLIS_BINARY defaults to target/debug/portcullis (relative to the repo root).
# Needs node (>= 20) and npm, python3 (used by tests/support/server.sh), and Chromium at /usr/bin/chromium
# (apt-get install -y chromium).
# Screenshots of every checked page are written to target/ui-screenshots/ (recovery-*.png and proxy-*.png for the
# recovery and proxy tests).
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
MAIL_DIR="$SERVER_TMP/mail"

# The SMTP sink the courier delivers to (recovery.test.mjs reads the codes from its directory).
server_start_smtp_sink "$MAIL_DIR" || exit 1
echo "ui: SMTP sink on port $SMTP_PORT, mails in $MAIL_DIR"

# Distinct free ports, chosen by the OS (all held open until all are known).
server_free_ports PUBLIC_PORT ADMIN_PORT API_PORT PROXY_PORT

# Recovery and verification by code, with the courier sending over SMTP to the sink. Without a
# show_verification_ui hook, sign-up still ends on the welcome page (the verification mail just goes out).
cat > "$CONFIG" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
  api: {host: 127.0.0.1, port: $API_PORT}
  proxy: {host: 127.0.0.1, port: $PROXY_PORT}
log: {level: warn}
hashers: {algorithm: bcrypt, bcrypt: {cost: 4}}
courier:
  smtp:
    connection_uri: "$SMTP_URI"
    from_address: no-reply@portcullis.test
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
    password:
      enabled: true
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
node tests/ui/recovery.test.mjs --public "$PUBLIC" --admin "$ADMIN" --mail-dir "$MAIL_DIR" --screenshots "$SHOTS"

# ---- The edge proxy test: a second server, configured as users deploy the proxy. ----

# Stop the UI test's server; the cleanup trap then looks after the next one (and shows its log on failure).
kill "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
SERVER_LOG="$SERVER_TMP/proxy-server.log"

PROXY_CONFIG="$SERVER_TMP/proxy-config.yml"
RULES="$SERVER_TMP/proxy-rules.json"
server_free_ports PUBLIC_PORT ADMIN_PORT API_PORT PROXY_PORT UPSTREAM_PORT
PROXY="http://127.0.0.1:$PROXY_PORT"
ADMIN="http://127.0.0.1:$ADMIN_PORT"

# /app/ is the upstream's (proxy.test.mjs serves it on UPSTREAM_PORT), for signed-in users only; it gets the
# identity as X-User-Id and X-User-Email. Anonymous browsers (Accept: text/html) are redirected to the login
# flow, by default <serve.public.base_url>self-service/login/browser?return_to=<the URL they asked for>.
cat > "$RULES" <<JSON
[
  {
    "id": "ui-test-app",
    "match": {"url": "http://<[^/]+>/app/<.*>", "methods": ["GET", "POST"]},
    "upstream": {"url": "http://127.0.0.1:$UPSTREAM_PORT"},
    "authenticators": [{"handler": "cookie_session"}],
    "authorizer": {"handler": "allow"},
    "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}],
    "errors": [
      {"handler": "redirect", "config": {"when": [{"error": ["unauthorized"], "request": {"header": {"accept": ["text/html"]}}}]}}
    ]
  }
]
JSON

# The public base URL is the proxy's: every redirect and form of the self-service flows stays on its origin,
# and return_to may point anywhere on it.
cat > "$PROXY_CONFIG" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT, base_url: "$PROXY/"}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
  api: {host: 127.0.0.1, port: $API_PORT}
  proxy: {host: 127.0.0.1, port: $PROXY_PORT}
log: {level: warn}
hashers: {algorithm: bcrypt, bcrypt: {cost: 4}}
access_rules:
  repositories: ["file://$RULES"]
selfservice:
  allowed_return_urls: ["$PROXY/"]
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

PROXY_DSN="sqlite://$SERVER_TMP/proxy-db.sqlite?mode=rwc"
# Catch a broken rule file here, with the validator's reason, rather than as a failed start (binaries without
# `rules validate` skip this).
if "$BIN" rules validate --help >/dev/null 2>&1; then
  DSN="$PROXY_DSN" "$BIN" rules validate --dev --config "$PROXY_CONFIG" "$RULES"
fi

echo "ui: starting $BIN for the proxy test (proxy $PROXY, admin $ADMIN, upstream port $UPSTREAM_PORT)"
server_start "$BIN" "$PROXY_CONFIG" "$PROXY_DSN" --dev
server_wait_ready "$ADMIN/admin/health/ready" || exit 1

node tests/ui/proxy.test.mjs --proxy "$PROXY" --admin "$ADMIN" --upstream-port "$UPSTREAM_PORT" --screenshots "$SHOTS"
