#!/usr/bin/env bash
# The container contract of deploy/Dockerfile and the Kubernetes manifests, checked without a Docker engine:
# `portcullis` runs as the unprivileged uid 65532 (no passwd entry, no capabilities, no-new-privs), with the
# whole file system read-only except its data directory (bubblewrap: --ro-bind / /, then a writable bind of
# the data directory, which is also the working directory, as WORKDIR in the image), and
#   1. `portcullis migrate sql --yes` migrates a SQLite database in the data directory;
#   2. `portcullis serve` (SQLite there, a rules file, every listener on a free loopback port) becomes ready:
#      /health/alive, /health/ready and /admin/health/ready answer 200;
#   3. it works: an anonymous browser request through the edge proxy is redirected to /ui/login, and a login
#      flow is created (a write to the database);
#   4. it never tried to write elsewhere (no "Read-only file system" or permission errors in its log);
#   5. SIGTERM makes it exit 0 within serve.shutdown_timeout.
#
# Usage: tests/deploy/readonly_root.sh [PATH_TO_PORTCULLIS_BINARY]   (default target/debug/portcullis)
# Needs root (to drop to 65532 and bind-mount), bwrap (Debian: bubblewrap), setpriv (util-linux), curl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# shellcheck source=../support/server.sh
source "$ROOT/tests/support/server.sh"
server_init readonly-root
server_resolve_bin "${1:-}"

UID_GID=65532
for tool in bwrap setpriv curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "readonly-root: $tool not found (Debian: apt-get install bubblewrap util-linux curl)" >&2
    exit 2
  fi
done
if [[ $(id -u) -ne 0 ]]; then
  echo "readonly-root: must run as root, to drop to uid $UID_GID and to bind-mount the file system" >&2
  exit 2
fi

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok    $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL  $*"; }
expect() { # expect WHAT ACTUAL WANTED
  if [[ "$2" == "$3" ]]; then ok "$1"; else fail "$1 (got: $2, want: $3)"; fi
}

server_setup_tmp
chmod 0755 "$SERVER_TMP"
DATA="$SERVER_TMP/data"
install -d -o "$UID_GID" -g "$UID_GID" -m 0750 "$DATA"

# The binary must be executable by the unprivileged user; copy it when its directory is not reachable.
BIN="$SERVER_BIN"
if ! setpriv --reuid "$UID_GID" --regid "$UID_GID" --clear-groups -- test -x "$BIN"; then
  install -D -m 0755 "$BIN" "$SERVER_TMP/bin/portcullis"
  BIN="$SERVER_TMP/bin/portcullis"
fi

server_free_ports PUBLIC_PORT ADMIN_PORT PROXY_PORT API_PORT
PUBLIC="http://127.0.0.1:$PUBLIC_PORT"
ADMIN="http://127.0.0.1:$ADMIN_PORT"
PROXY="http://127.0.0.1:$PROXY_PORT"
SHUTDOWN_TIMEOUT=5
DSN="sqlite://$DATA/db.sqlite?mode=rwc"

cat >"$SERVER_TMP/rules.yaml" <<'YAML'
- id: app
  match:
    url: "<https?>://<[^/]+>/app/<.*>"
    methods: [GET]
  upstream:
    url: http://127.0.0.1:9
  authenticators: [{handler: cookie_session}]
  authorizer: {handler: allow}
  mutators: [{handler: header, config: {headers: {X-User-Id: "{{ print .Subject }}"}}}]
  errors:
    - handler: redirect
      config:
        to: /ui/login
        return_to_query_param: return_to
        when: [{error: [unauthorized], request: {header: {accept: [text/html]}}}]
YAML
cat >"$SERVER_TMP/config.yaml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
  proxy: {host: 127.0.0.1, port: $PROXY_PORT}
  api: {host: 127.0.0.1, port: $API_PORT}
  shutdown_timeout: ${SHUTDOWN_TIMEOUT}s
secrets:
  cookie: [readonly-root-test-cookie-secret]
  default: [readonly-root-test-default-secret]
access_rules:
  repositories: ["file://$SERVER_TMP/rules.yaml"]
log: {level: info}
YAML
chmod 0644 "$SERVER_TMP/config.yaml" "$SERVER_TMP/rules.yaml"

# sandbox CMD...: runs CMD as 65532 with a clean environment, / read-only and only DATA writable.
sandbox() {
  env -i PATH=/usr/local/bin:/usr/bin:/bin DSN="$DSN" \
    bwrap --ro-bind / / --dev /dev --proc /proc --bind "$DATA" "$DATA" --chdir "$DATA" --die-with-parent \
    "${BWRAP_EXTRA[@]}" \
    -- setpriv --reuid "$UID_GID" --regid "$UID_GID" --clear-groups --inh-caps=-all --bounding-set=-all \
    --no-new-privs -- "$@"
}
BWRAP_EXTRA=()

echo "readonly-root: the sandbox"
expect "it runs as uid $UID_GID" "$(sandbox id -u)" "$UID_GID"
if sandbox sh -c 'touch /tmp/readonly-root-probe' 2>/dev/null; then fail "/tmp is read-only"; else ok "/tmp is read-only"; fi
if sandbox sh -c "touch '$SERVER_TMP/probe'" 2>/dev/null; then fail "the config directory is read-only"; else ok "the config directory is read-only"; fi
if sandbox sh -c 'touch ./probe && rm ./probe'; then ok "the data directory is writable"; else fail "the data directory is writable"; fi

echo "readonly-root: portcullis migrate sql"
if sandbox "$BIN" migrate sql --yes >"$SERVER_TMP/migrate.log" 2>&1; then
  ok "migrate sql --yes exits 0"
else
  fail "migrate sql --yes exits 0: $(cat "$SERVER_TMP/migrate.log")"
fi

echo "readonly-root: portcullis serve"
STATUS="$SERVER_TMP/bwrap-status.json"
BWRAP_EXTRA=(--json-status-fd 3)
sandbox "$BIN" serve --config "$SERVER_TMP/config.yaml" 3>"$STATUS" >"$SERVER_LOG" 2>&1 &
BWRAP_PID=$!
BWRAP_EXTRA=()
for _ in $(seq 1 50); do
  [[ -s "$STATUS" ]] && break
  sleep 0.1
done
SERVER_PID="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["child-pid"])' "$STATUS")"

server_wait_ready "$PUBLIC/health/ready" || exit 1
expect "/health/ready answers 200" "$(curl -s -o /dev/null -w '%{http_code}' "$PUBLIC/health/ready")" 200
expect "/health/alive answers 200" "$(curl -s -o /dev/null -w '%{http_code}' "$PUBLIC/health/alive")" 200
expect "/admin/health/ready answers 200" "$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN/admin/health/ready")" 200
expect "serve runs as uid $UID_GID" "$(awk '/^Uid:/ {print $2}' "/proc/$SERVER_PID/status")" "$UID_GID"
expect "serve has no capabilities" "$(awk '/^CapEff:/ {print $2}' "/proc/$SERVER_PID/status")" 0000000000000000

location="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Accept: text/html' "$PROXY/app/page")"
case "$location" in
  "302 $PROXY/ui/login?return_to="*) ok "the edge proxy redirects an anonymous browser to /ui/login" ;;
  *) fail "the edge proxy redirects an anonymous browser to /ui/login (got: $location)" ;;
esac
expect "a login flow is created (a database write)" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$PUBLIC/self-service/login/api")" 200
expect "the database is owned by uid $UID_GID" "$(stat -c %u "$DATA/db.sqlite")" "$UID_GID"

started=$(date +%s)
kill -TERM "$SERVER_PID"
rc=0
wait "$BWRAP_PID" || rc=$?
elapsed=$(($(date +%s) - started))
SERVER_PID=""
expect "SIGTERM: serve exits 0" "$rc" 0
if [[ $elapsed -le $((SHUTDOWN_TIMEOUT + 2)) ]]; then
  ok "SIGTERM: serve exits within shutdown_timeout (${elapsed} s)"
else
  fail "SIGTERM: serve exits within shutdown_timeout ${SHUTDOWN_TIMEOUT}s (took ${elapsed} s)"
fi
if grep -E -i 'read-only file system|os error 30|permission denied|os error 13' "$SERVER_LOG" "$SERVER_TMP/migrate.log"; then
  fail "no write outside the data directory was attempted (see the lines above)"
else
  ok "no write outside the data directory was attempted"
fi
others="$(find "$DATA" -mindepth 1 -not -name 'db.sqlite*' -printf '%P\n')"
expect "the data directory holds only the database" "$others" ""

echo "readonly-root: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
