#!/usr/bin/env bash
# Quick loopback throughput check of the authenticated edge proxy next to nginx `proxy_pass`, both in front of the
# same upstream (an nginx `return 200` server), with wrk. Not a test: it prints requests/s and latency.
#
# Usage: tests/bench/edge.sh [PORTCULLIS_BINARY] (default target/release/portcullis; build it with
#        `cargo build --release -p proxy`). Needs nginx, wrk, curl and python3 (apt-get install nginx wrk curl).
# Env: DURATION (default 10s), CONNECTIONS (default 32), THREADS (default 2), PIN (default "taskset -c 0" for the
#      server under test when taskset exists, so both proxies get one core; set PIN= to disable), PERF_OUT (a path:
#      record a `perf` profile of portcullis during the cookie-session run; view it with `perf report -i PATH`).
#
# Portcullis path: client → edge proxy (rule match, cookie_session from the session cache, header mutator,
# identity header stripping) → upstream. nginx path: client → nginx proxy_pass (no auth) → upstream.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${1:-$ROOT/target/release/portcullis}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
if [[ -z "${PIN+x}" ]]; then
  if command -v taskset >/dev/null; then PIN="taskset -c 0"; else PIN=""; fi
fi
for tool in nginx wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "edge bench: $tool is required" >&2; exit 2; }
done
[[ -x "$BIN" ]] || { echo "edge bench: $BIN not found (cargo build --release -p proxy)" >&2; exit 2; }

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

read -r UP NGX PUB ADM API PRX < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

nginx_conf() { # name listen body
  mkdir -p "$TMP/$1/logs"
  cat > "$TMP/$1/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $TMP/$1/nginx.pid;
error_log $TMP/$1/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/$1/body; proxy_temp_path $TMP/$1/proxy;
  fastcgi_temp_path $TMP/$1/fcgi; uwsgi_temp_path $TMP/$1/uwsgi; scgi_temp_path $TMP/$1/scgi;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$2; $3 }
}
CONF
}
nginx_conf upstream "$UP" 'location / { return 200 "hello from the app\n"; }'
nginx_conf front "$NGX" 'location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://app; }'
taskset -c 1 nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" 2>/dev/null & PIDS+=($!)
$PIN nginx -p "$TMP/front" -c "$TMP/front/nginx.conf" 2>/dev/null & PIDS+=($!)

cat > "$TMP/rules.json" <<JSON
[{"id": "app", "match": {"url": "http://<[^/]+>/<.*>", "methods": ["GET"]},
  "upstream": {"url": "http://127.0.0.1:$UP"},
  "authenticators": [{"handler": "cookie_session"}],
  "authorizer": {"handler": "allow"},
  "mutators": [{"handler": "header", "config": {"preset": "portcullis"}}]}]
JSON
cat > "$TMP/config.yml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUB}
  admin: {host: 127.0.0.1, port: $ADM}
  api: {host: 127.0.0.1, port: $API}
  proxy: {host: 127.0.0.1, port: $PRX}
log: {level: error}
hashers: {algorithm: bcrypt, bcrypt: {cost: 4}}
access_rules: {repositories: ["file://$TMP/rules.json"]}
selfservice: {methods: {password: {config: {haveibeenpwned_enabled: false}}}}
YAML
TOKIO_WORKER_THREADS="${WORKERS:-1}" DSN="sqlite://$TMP/db.sqlite?mode=rwc" $PIN "$BIN" serve --dev --config "$TMP/config.yml" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$ADM/admin/health/ready" >/dev/null && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$ADM/admin/health/ready" >/dev/null || { cat "$TMP/server.log"; exit 1; }

# A user and a browser session cookie, through the real browser login flow (JSON variant).
curl -fs -o /dev/null -X POST "http://127.0.0.1:$ADM/admin/identities" -H 'Content-Type: application/json' \
  -d '{"schema_id":"default","traits":{"email":"bench@example.com"},"credentials":{"password":{"config":{"password":"correct horse battery staple"}}}}'
JAR="$TMP/jar"
FLOW="$(curl -fs -c "$JAR" -H 'Accept: application/json' "http://127.0.0.1:$PRX/self-service/login/browser")"
read -r FLOW_ID CSRF < <(python3 -c '
import json, sys
f = json.loads(sys.argv[1])
csrf = next(n["attributes"]["value"] for n in f["ui"]["nodes"] if n["attributes"].get("name") == "csrf_token")
print(f["id"], csrf)' "$FLOW")
curl -fs -o /dev/null -b "$JAR" -c "$JAR" -H 'Accept: application/json' -H 'Content-Type: application/json' \
  "http://127.0.0.1:$PRX/self-service/login?flow=$FLOW_ID" \
  -d "{\"method\":\"password\",\"identifier\":\"bench@example.com\",\"password\":\"correct horse battery staple\",\"csrf_token\":\"$CSRF\"}"
COOKIE="$(awk '$6 == "ory_kratos_session" {print $6 "=" $7}' "$JAR")"
[[ -n "$COOKIE" ]] || { echo "edge bench: no session cookie" >&2; exit 1; }
STATUS="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "http://127.0.0.1:$PRX/app")"
[[ "$STATUS" == 200 ]] || { echo "edge bench: authenticated request answered $STATUS" >&2; exit 1; }
STATUS="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PRX/app")"
[[ "$STATUS" == 401 ]] || { echo "edge bench: anonymous request answered $STATUS" >&2; exit 1; }

run() { # label url [header]
  local label="$1" url="$2"; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d 2s "$@" "$url" >/dev/null # warm-up
  local out; out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d "$DURATION" --latency "$@" "$url")"
  printf '%-38s %10s req/s   p50 %8s   p99 %8s\n' "$label" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
  if grep -q 'Non-2xx' <<<"$out"; then echo "  warning: $(grep 'Non-2xx' <<<"$out")"; fi
}
echo "loopback, $CONNECTIONS connections, $DURATION, server under test: ${PIN:-unpinned}"
run "upstream direct (nginx return 200)" "http://127.0.0.1:$UP/app"
run "nginx proxy_pass (no auth)" "http://127.0.0.1:$NGX/app"
if [[ -n "${PERF_OUT:-}" ]]; then
  perf record -F 2000 -g -o "$PERF_OUT" -p "$SERVER_PID" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
  PERF_PID=$!
fi
run "portcullis edge (cookie session)" "http://127.0.0.1:$PRX/app" -H "Cookie: $COOKIE"
if [[ -n "${PERF_OUT:-}" ]]; then wait "$PERF_PID" || true; fi
run "portcullis edge (anonymous → 401)" "http://127.0.0.1:$PRX/app"
