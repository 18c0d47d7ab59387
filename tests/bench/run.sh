#!/usr/bin/env bash
# Benchmark runner: Portcullis next to nginx on loopback, with wrk. Prints one Markdown table (and the target
# checks) to stdout and writes target/bench/results.json and target/bench/results.md. Progress goes to stderr.
#
# Usage: tests/bench/run.sh
# Env:   BIN=/path/to/portcullis  use this binary instead of `cargo build --release -p proxy`
#        RUNS (3)           rounds; every scenario runs once per round, the table shows medians
#        DURATION (10s)     measured wrk run per scenario and round, after a 2 s warm-up
#        CONNECTIONS (32)   wrk connections
#        THREADS (1)        nginx worker_processes = Portcullis tokio worker threads (TOKIO_WORKER_THREADS)
#        WRK_THREADS        wrk threads (default: one per load CPU)
#        SKIP_LOGIN=1       skip scenario 9 (`cargo bench -p tests --bench login`); BENCH_LOGINS is passed to it
#        PERF_OUT=PATH      record a `perf` profile of Portcullis during the first measured run of PERF_SCENARIO
#                           (S3 to S8; default S5); view it with `perf report -i PATH`
#        KEEP_TMP=1         keep the temporary directory (configs, logs, wrk outputs) and print its path
#
# CPUs: with 2+ CPUs the servers under test (front nginx, Portcullis) run on CPUs 0..THREADS-1 (at most all but
# the last CPU) and wrk, the upstream nginx and Redis on the others (`taskset`); with one CPU nothing is pinned.
# CPU s/10k req is utime+stime of the servers under test (nginx master + workers and/or Portcullis, from
# /proc/PID/stat) over the measured run, per 10,000 requests; for scenario 1 it is the upstream nginx's.
#
# Scenarios (the same upstream everywhere: nginx `return 200 "hello\n"`):
#  0 bare Pingora pass-through (proxy/examples/bare_pingora.rs, same pingora version, 1 thread)
#  1 upstream direct                      5 Portcullis proxy, cookie_session (in-process cache hit) + header
#  2 nginx proxy_pass, upstream keep-alive  6 as 5, in-process tier off (cache.local.capacity: 0), Redis only
#  3 nginx auth_request → /decisions      7 Portcullis proxy, jwt (cached JWKS) + id_token
#  4 Portcullis proxy, anonymous + noop   8 Portcullis edge /sessions/whoami
#  9 API logins/s vs raw argon2id verifies/s (tests/bench/login.rs)
# 10 RSS (idle, after scenario 5) and cold start to /admin/health/ready on a fresh SQLite file
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/bench"
OUT_DIR="$ROOT/target/bench"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
SKIP_LOGIN="${SKIP_LOGIN:-0}"
WARMUP=2s

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: FAILED: %s\n' "$*" >&2; exit 1; }
py() { python3 "$HERE/bench.py" "$@"; }

# --- tools -------------------------------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v openssl >/dev/null || missing+=(openssl)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  SUDO=""
  if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
CLK_TCK="$(getconf CLK_TCK)"

# --- build ---------------------------------------------------------------------------------------------------------
if [[ -z "${BIN:-}" ]]; then
  log "building: cargo build --release -p proxy"
  (cd "$ROOT" && cargo build --release -p proxy) >&2
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis"
fi
[[ -x "$BIN" ]] || die "$BIN is not an executable"
if [[ -z "${BARE_BIN:-}" ]]; then
  log "building: cargo build --release -p proxy --example bare_pingora"
  (cd "$ROOT" && cargo build --release -p proxy --example bare_pingora) >&2
  BARE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bare_pingora"
fi
[[ -x "$BARE_BIN" ]] || die "$BARE_BIN is not an executable"
if [[ "$SKIP_LOGIN" != 1 ]]; then
  log "building: cargo bench -p tests --bench login --no-run"
  (cd "$ROOT" && cargo bench -p tests --bench login --no-run) >&2
fi

# --- CPUs ----------------------------------------------------------------------------------------------------------
NPROC="$(nproc)"
SERVER_CPUS="" LOAD_CPUS="" LOAD_N=1
if ((NPROC >= 2)); then
  n=$((THREADS < NPROC - 1 ? THREADS : NPROC - 1))
  if ((n == 1)); then SERVER_CPUS="0"; else SERVER_CPUS="0-$((n - 1))"; fi
  if ((n == NPROC - 1)); then LOAD_CPUS="$n"; else LOAD_CPUS="$n-$((NPROC - 1))"; fi
  LOAD_N=$((NPROC - n))
fi
WRK_THREADS="${WRK_THREADS:-$((LOAD_N < CONNECTIONS ? LOAD_N : CONNECTIONS))}"
# `pin_server CMD… &`, `pin_load CMD… &`: exec CMD on the right CPUs, so that $! is its own PID (run them in a
# subshell, `(pin_load CMD…)`, in the foreground).
pin_server() { if [[ -n "$SERVER_CPUS" ]]; then exec taskset -c "$SERVER_CPUS" "$@"; else exec "$@"; fi; }
pin_load() { if [[ -n "$LOAD_CPUS" ]]; then exec taskset -c "$LOAD_CPUS" "$@"; else exec "$@"; fi; }

# --- temporary directory, processes, cleanup --------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")"
PIDS=()
stop_servers() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  local status=$?
  stop_servers
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/wrk" "$TMP/keys"
RUNS_FILE="$TMP/runs.jsonl" LOGINS_FILE="$TMP/logins.jsonl" EXTRA_FILE="$TMP/extra.jsonl"
: >"$RUNS_FILE"; : >"$LOGINS_FILE"; : >"$EXTRA_FILE"
extra() { printf '{"kind": "%s", "value": %s}\n' "$1" "$2" >>"$EXTRA_FILE"; }

log "checking that the machine is idle (1 s)"
IDLE_BEFORE="$(py idle-check --seconds 1)"

read -r UP NGX PUB_A ADM_A API_A PRX_A PUB_B ADM_B API_B PRX_B REDIS BARE < <(py ports 12)

wait_http() { # url what log
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.05
  done
  die "$2 did not become ready at $1; log:"$'\n'"$(tail -n 40 "$3" 2>/dev/null)"
}

# --- keys (scenario 7): EC P-256 with openssl, JWKs with python stdlib -------------------------------------------
KEYS="$TMP/keys"
openssl ecparam -name prime256v1 -genkey -noout -out "$KEYS/key.pem" 2>/dev/null
openssl ec -in "$KEYS/key.pem" -outform DER -out "$KEYS/key.der" 2>/dev/null
py jwk "$KEYS/key.der" "$KEYS/private.jwks.json" "$KEYS/public.jwks.json"
AUDIENCE="portcullis-bench"
# Claims mapper of the session-to-JWT template: whoami tokens carry no `aud` unless a mapper adds one.
echo "{\"claims\": {\"aud\": [\"$AUDIENCE\"]}}" >"$KEYS/mapper.json"
ISSUER="http://127.0.0.1:$PUB_A" # what `tokenize_as` puts in `iss`: serve.public.base_url without its trailing /

# --- upstream and front nginx -------------------------------------------------------------------------------------
nginx_conf() { # name workers body
  local dir="$TMP/$1" user=""
  mkdir -p "$dir/logs"
  if [[ "$(id -u)" -eq 0 ]]; then user="user root;"; fi
  cat >"$dir/nginx.conf" <<CONF
$user
worker_processes $2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections $((4 * CONNECTIONS + 1024)); }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
$3
}
CONF
  "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" 2>"$dir/logs/check.log" || die "nginx -t ($1): $(cat "$dir/logs/check.log")"
}
# The upstream; /<prefix>/_seen echoes the identity headers it received, for the checks before each scenario.
nginx_conf upstream "$LOAD_N" "  server {
    listen 127.0.0.1:$UP;
    location / { return 200 \"hello\\n\"; }
    location ~ ^/[a-z]+/_seen\$ {
      add_header X-Seen-User \$http_x_user_id always;
      add_header X-Seen-Authorization \$http_authorization always;
      return 200 \"seen\\n\";
    }
  }"
# Scenario 2 on /plain/, scenario 3 (forward auth as Oathkeeper / oauth2-proxy users deploy it) on /fwd/. Keep-alive
# to both upstreams needs `Connection ""` in every location: a location with any proxy_set_header of its own
# inherits none from the server level.
nginx_conf front "$THREADS" "  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  upstream portcullis_api { server 127.0.0.1:$API_A; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    proxy_http_version 1.1;
    location /plain/ {
      proxy_set_header Connection \"\";
      proxy_pass http://app;
    }
    location /fwd/ {
      auth_request /_portcullis;
      auth_request_set \$user_id \$upstream_http_x_user_id;
      auth_request_set \$user_email \$upstream_http_x_user_email;
      proxy_set_header Connection \"\";
      proxy_set_header X-User-Id \$user_id;
      proxy_set_header X-User-Email \$user_email;
      proxy_pass http://app;
    }
    location = /_portcullis {
      internal;
      proxy_pass http://portcullis_api/decisions;
      proxy_set_header Connection \"\";
      proxy_pass_request_body off;
      proxy_set_header Content-Length \"\";
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }"

# --- Portcullis: rules and configs --------------------------------------------------------------------------------
rule() { # id prefix authenticators mutators
  printf '{"id": "%s", "match": {"url": "http://<[^/]+>/%s/<.*>", "methods": ["GET"]}, "upstream": {"url": "http://127.0.0.1:%s"}, "authenticators": %s, "authorizer": {"handler": "allow"}, "mutators": %s}' \
    "$1" "$2" "$UP" "$3" "$4"
}
HEADER='[{"handler": "header", "config": {"preset": "portcullis"}}]'
JWT_AUTHN="[{\"handler\": \"jwt\", \"config\": {\"jwks_urls\": [\"file://$KEYS/public.jwks.json\"], \"allowed_algorithms\": [\"ES256\"], \"trusted_issuers\": [\"$ISSUER\"], \"target_audience\": [\"$AUDIENCE\"], \"jwks_ttl\": \"1h\"}}]"
ID_TOKEN="[{\"handler\": \"id_token\", \"config\": {\"issuer_url\": \"http://127.0.0.1:$PRX_A/\", \"jwks_url\": \"file://$KEYS/private.jwks.json\"}}]"
{
  echo "["
  rule anon anon '[{"handler": "anonymous"}]' '[{"handler": "noop"}]'; echo ","
  rule cookie cookie '[{"handler": "cookie_session"}]' "$HEADER"; echo ","
  rule fwd fwd '[{"handler": "cookie_session"}]' "$HEADER"; echo ","
  rule jwt jwt "$JWT_AUTHN" "$ID_TOKEN"
  echo "]"
} >"$TMP/rules.json"

portcullis_conf() { # dir pub admin api proxy cache-yaml
  mkdir -p "$1"
  cat >"$1/config.yml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $2, base_url: "http://127.0.0.1:$2/"}
  admin: {host: 127.0.0.1, port: $3}
  api: {host: 127.0.0.1, port: $4}
  proxy: {host: 127.0.0.1, port: $5}
  shutdown_timeout: 1s
log: {level: error}
hashers: {algorithm: bcrypt, bcrypt: {cost: 4}}
selfservice: {methods: {password: {config: {haveibeenpwned_enabled: false}}}}
access_rules: {repositories: ["file://$TMP/rules.json"]}
session:
  whoami:
    tokenizer:
      templates:
        bench: {jwks_url: "file://$KEYS/private.jwks.json", claims_mapper_url: "file://$KEYS/mapper.json", ttl: 1h}
authenticators: {jwt: {enabled: true}}
mutators: {id_token: {enabled: true}}
cache: $6
YAML
  # `config check` reads neither DSN nor --dev: give it the DSN that `serve` gets from the environment.
  echo "dsn: \"sqlite://$1/db.sqlite?mode=rwc\"" >"$1/dsn.yml"
  "$BIN" config check "$1/config.yml" "$1/dsn.yml" >"$1/check.log" 2>&1 \
    || die "portcullis config check $1/config.yml: $(cat "$1/check.log")"
  "$BIN" rules validate "$TMP/rules.json" --config "$1/config.yml" >"$1/rules.log" 2>&1 \
    || die "portcullis rules validate: $(cat "$1/rules.log")"
}
portcullis_conf "$TMP/a" "$PUB_A" "$ADM_A" "$API_A" "$PRX_A" '{local: {capacity: 100000}}'
# Scenario 6: a capacity of 0 disables the in-process tier (identity/src/cache/local.rs), so every lookup asks Redis.
portcullis_conf "$TMP/b" "$PUB_B" "$ADM_B" "$API_B" "$PRX_B" "{redis: {url: \"redis://127.0.0.1:$REDIS/\"}, local: {capacity: 0}}"

start_portcullis() { # dir ; sets STARTED_PID
  pin_server env TOKIO_WORKER_THREADS="$THREADS" DSN="sqlite://$1/db.sqlite?mode=rwc" \
    "$BIN" serve --dev --config "$1/config.yml" >"$1/server.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

# --- start everything -------------------------------------------------------------------------------------------
log "starting upstream nginx, Redis, front nginx and two Portcullis instances"
pin_load "$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" 2>>"$TMP/upstream/logs/error.log" &
UP_PID=$!; PIDS+=("$UP_PID")
mkdir -p "$TMP/redis"
pin_load redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP/redis" \
  >"$TMP/redis/redis.log" 2>&1 &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
pin_server "$NGINX" -p "$TMP/front" -c "$TMP/front/nginx.conf" 2>>"$TMP/front/logs/error.log" &
FRONT_PID=$!; PIDS+=("$FRONT_PID")
pin_server "$BARE_BIN" "127.0.0.1:$BARE" "127.0.0.1:$UP" >"$TMP/bare.log" 2>&1 &
BARE_PID=$!; PIDS+=("$BARE_PID")
start_portcullis "$TMP/a"; A_PID=$STARTED_PID
start_portcullis "$TMP/b"; B_PID=$STARTED_PID

wait_http "http://127.0.0.1:$UP/" "upstream nginx" "$TMP/upstream/logs/error.log"
wait_http "http://127.0.0.1:$ADM_A/admin/health/ready" "Portcullis A" "$TMP/a/server.log"
wait_http "http://127.0.0.1:$ADM_B/admin/health/ready" "Portcullis B (Redis)" "$TMP/b/server.log"
wait_http "http://127.0.0.1:$NGX/plain/" "front nginx" "$TMP/front/logs/error.log"
wait_http "http://127.0.0.1:$BARE/app" "bare Pingora" "$TMP/bare.log"
sleep 1
extra portcullis_idle_rss_kib "$(py rss "$A_PID")"
extra nginx_idle_rss_kib "$(py rss "$FRONT_PID")"

# --- sessions, tokens and checks ------------------------------------------------------------------------------------
PASSWORD="correct horse battery staple"
session_cookie() { # admin-port proxy-port name ; prints "identity-id cookie"
  local jar="$TMP/$3.jar" identity flow flow_id csrf cookie
  identity="$(curl -fsS -X POST "http://127.0.0.1:$1/admin/identities" -H 'Content-Type: application/json' \
    -d "{\"schema_id\":\"default\",\"traits\":{\"email\":\"bench-$3@example.com\"},\"credentials\":{\"password\":{\"config\":{\"password\":\"$PASSWORD\"}}}}" \
    | py json-get id)" || die "creating an identity on the admin API (port $1)"
  flow="$(curl -fsS -c "$jar" -H 'Accept: application/json' "http://127.0.0.1:$2/self-service/login/browser")" \
    || die "starting a browser login flow on port $2"
  read -r flow_id csrf < <(py flow <<<"$flow")
  curl -fsS -o /dev/null -b "$jar" -c "$jar" -H 'Accept: application/json' -H 'Content-Type: application/json' \
    "http://127.0.0.1:$2/self-service/login?flow=$flow_id" \
    -d "{\"method\":\"password\",\"identifier\":\"bench-$3@example.com\",\"password\":\"$PASSWORD\",\"csrf_token\":\"$csrf\"}" \
    || die "submitting the login flow on port $2"
  cookie="$(awk '$6 == "ory_kratos_session" {print $6 "=" $7}' "$jar")"
  [[ -n "$cookie" ]] || die "the login on port $2 set no ory_kratos_session cookie"
  echo "$identity $cookie"
}
expect() { # status url [curl args]: the response status must be `status`
  local want="$1" url="$2" got
  shift 2
  got="$(curl -s -o "$TMP/body" -w '%{http_code}' "$@" "$url")"
  [[ "$got" == "$want" ]] || die "GET $url answered $got, expected $want: $(head -c 600 "$TMP/body")"
}
seen() { # header url [curl args]: the value of an X-Seen-* header the upstream echoed
  local name="$1" url="$2"
  shift 2
  curl -fsS -D - -o /dev/null "$@" "$url" | tr -d '\r' | awk -v h="$(tr 'A-Z' 'a-z' <<<"$name"):" 'tolower($1) == h {print $2}'
}
read -r ID_A COOKIE_A < <(session_cookie "$ADM_A" "$PRX_A" a)
read -r ID_B COOKIE_B < <(session_cookie "$ADM_B" "$PRX_B" b)
[[ -n "${COOKIE_B:-}" && -n "${COOKIE_A:-}" ]] || die "no session cookies"

WHOAMI="$(curl -fsS -H "Cookie: $COOKIE_A" "http://127.0.0.1:$PRX_A/sessions/whoami?tokenize_as=bench")" \
  || die "GET /sessions/whoami?tokenize_as=bench: $(curl -s -H "Cookie: $COOKIE_A" "http://127.0.0.1:$PRX_A/sessions/whoami?tokenize_as=bench")"
JWT="$(py json-get tokenized <<<"$WHOAMI")"
[[ "$JWT" == *.*.* ]] || die "whoami?tokenize_as=bench returned no token: $WHOAMI"
read -r JWT_ISS JWT_AUD < <(py jwt-claims "$JWT" | py json-get claims.iss claims.aud)
[[ "$JWT_ISS" == "$ISSUER" ]] || die "the tokenized session's iss is $JWT_ISS, the jwt rule trusts $ISSUER"
[[ "$JWT_AUD" == "[\"$AUDIENCE\"]" ]] || die "the tokenized session's aud is $JWT_AUD, expected [\"$AUDIENCE\"]"

log "checking every scenario answers as expected"
expect 200 "http://127.0.0.1:$UP/app"
expect 200 "http://127.0.0.1:$NGX/plain/app"
expect 200 "http://127.0.0.1:$NGX/fwd/app" -H "Cookie: $COOKIE_A"
expect 401 "http://127.0.0.1:$NGX/fwd/app"
[[ "$(seen X-Seen-User "http://127.0.0.1:$NGX/fwd/_seen" -H "Cookie: $COOKIE_A")" == "$ID_A" ]] \
  || die "S3: the upstream did not receive X-User-Id $ID_A through auth_request"
expect 200 "http://127.0.0.1:$PRX_A/anon/app"
expect 200 "http://127.0.0.1:$PRX_A/cookie/app" -H "Cookie: $COOKIE_A"
expect 401 "http://127.0.0.1:$PRX_A/cookie/app"
[[ "$(seen X-Seen-User "http://127.0.0.1:$PRX_A/cookie/_seen" -H "Cookie: $COOKIE_A")" == "$ID_A" ]] \
  || die "S5: the upstream did not receive X-User-Id $ID_A"
expect 200 "http://127.0.0.1:$PRX_B/cookie/app" -H "Cookie: $COOKIE_B"
expect 401 "http://127.0.0.1:$PRX_B/cookie/app"
[[ "$(seen X-Seen-User "http://127.0.0.1:$PRX_B/cookie/_seen" -H "Cookie: $COOKIE_B")" == "$ID_B" ]] \
  || die "S6: the upstream did not receive X-User-Id $ID_B"
expect 200 "http://127.0.0.1:$PRX_A/jwt/app" -H "Authorization: Bearer $JWT"
expect 401 "http://127.0.0.1:$PRX_A/jwt/app"
[[ "$(seen X-Seen-Authorization "http://127.0.0.1:$PRX_A/jwt/_seen" -H "Authorization: Bearer $JWT")" == Bearer ]] \
  || die "S7: the upstream did not receive an id_token Authorization header"
ID_TOKEN_SEEN="$(curl -fsS -D - -o /dev/null -H "Authorization: Bearer $JWT" "http://127.0.0.1:$PRX_A/jwt/_seen" \
  | tr -d '\r' | awk 'tolower($1) == "x-seen-authorization:" {print $3}')"
[[ "$(py jwt-claims "$ID_TOKEN_SEEN" | py json-get claims.iss)" == "http://127.0.0.1:$PRX_A/" ]] \
  || die "S7: the upstream's Authorization is not an id_token from the mutator"
expect 200 "http://127.0.0.1:$PRX_A/sessions/whoami" -H "Cookie: $COOKIE_A"
expect 401 "http://127.0.0.1:$PRX_A/sessions/whoami"

# --- scenarios ------------------------------------------------------------------------------------------------------
SCENARIOS=(S0 S1 S2 S3 S4 S5 S6 S7 S8)
declare -A LABEL URL HDR CPU_PIDS AUX_PIDS
LABEL[S0]="0. bare Pingora pass-through (same pingora, no auth)";    URL[S0]="http://127.0.0.1:$BARE/app"
LABEL[S1]="1. upstream direct (nginx return 200)";                   URL[S1]="http://127.0.0.1:$UP/app"
LABEL[S2]="2. nginx proxy_pass, upstream keep-alive (no auth)";      URL[S2]="http://127.0.0.1:$NGX/plain/app"
LABEL[S3]="3. nginx auth_request → Portcullis /decisions (cookie)"; URL[S3]="http://127.0.0.1:$NGX/fwd/app"
LABEL[S4]="4. Portcullis proxy, anonymous + noop";                   URL[S4]="http://127.0.0.1:$PRX_A/anon/app"
LABEL[S5]="5. Portcullis proxy, cookie_session (in-process cache) + header"; URL[S5]="http://127.0.0.1:$PRX_A/cookie/app"
LABEL[S6]="6. as 5, in-process tier off: every session from Redis";  URL[S6]="http://127.0.0.1:$PRX_B/cookie/app"
LABEL[S7]="7. Portcullis proxy, jwt (cached JWKS) + id_token";       URL[S7]="http://127.0.0.1:$PRX_A/jwt/app"
LABEL[S8]="8. Portcullis edge /sessions/whoami (cookie)";            URL[S8]="http://127.0.0.1:$PRX_A/sessions/whoami"
HDR[S0]="" HDR[S1]="" HDR[S2]="" HDR[S4]=""
HDR[S3]="Cookie: $COOKIE_A" HDR[S5]="Cookie: $COOKIE_A" HDR[S8]="Cookie: $COOKIE_A"
HDR[S6]="Cookie: $COOKIE_B" HDR[S7]="Authorization: Bearer $JWT"
# The servers under test of each scenario, whose CPU time is measured: "name:pid …".
CPU_PIDS[S0]="pingora:$BARE_PID" CPU_PIDS[S1]="upstream_nginx:$UP_PID" CPU_PIDS[S2]="nginx:$FRONT_PID" CPU_PIDS[S3]="nginx:$FRONT_PID portcullis:$A_PID"
CPU_PIDS[S4]="portcullis:$A_PID" CPU_PIDS[S5]="portcullis:$A_PID" CPU_PIDS[S6]="portcullis:$B_PID"
CPU_PIDS[S7]="portcullis:$A_PID" CPU_PIDS[S8]="portcullis:$A_PID"
AUX_PIDS[S6]="$REDIS_PID" # reported apart (redis_cpu_s in the JSON): Redis is infrastructure, on the load CPUs

cache_metric() { # admin-port name
  curl -fsS "http://127.0.0.1:$1/admin/metrics/prometheus" | awk -v m="portcullis_session_cache_$2" '$1 == m {print $2}'
}

measure() { # scenario round
  local id="$1" round="$2" args=() names=() pids=() entry t0 t1 tw0 tw1 a0="" aux=() rss=() perf_pid="" out
  out="$TMP/wrk/$id.$round.txt"
  if [[ -n "${HDR[$id]}" ]]; then args=(-H "${HDR[$id]}"); fi
  for entry in ${CPU_PIDS[$id]}; do names+=("${entry%%:*}"); pids+=("${entry#*:}"); done
  (pin_load wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${args[@]}" "${URL[$id]}") >/dev/null
  tw0="$(py timewait "$UP" "$API_A")"
  t0="$(py cpu "${pids[@]}")"
  if [[ -n "${AUX_PIDS[$id]:-}" ]]; then a0="$(py cpu "${AUX_PIDS[$id]}")"; fi
  if [[ "$id" == "${PERF_SCENARIO:-S5}" && "$round" == 1 && -n "${PERF_OUT:-}" ]]; then
    perf record -F 2000 -g -o "$PERF_OUT" -p "${CPU_PIDS[$id]##*:}" >"$TMP/perf.log" 2>&1 &
    perf_pid=$!
  fi
  (pin_load wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${args[@]}" "${URL[$id]}") >"$out" \
    || die "wrk failed for $id: $(cat "$out")"
  t1="$(py cpu "${pids[@]}")"
  tw1="$(py timewait "$UP" "$API_A")"
  if [[ -n "${AUX_PIDS[$id]:-}" ]]; then aux=(--aux-ticks-before "$a0" --aux-ticks-after "$(py cpu "${AUX_PIDS[$id]}")"); fi
  if [[ "$id" == S5 ]]; then rss=(--rss-kib "$(py rss "$A_PID")"); fi
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" || true
    log "perf profile of Portcullis during $id: perf report -i $PERF_OUT"
  fi
  py record --out "$RUNS_FILE" --scenario "$id" --round "$round" --wrk "$out" --clk-tck "$CLK_TCK" \
    --ticks-before "$t0" --ticks-after "$t1" --names "$(IFS=,; echo "${names[*]}")" "${aux[@]}" "${rss[@]}" \
    --timewait-before "$tw0" --timewait-after "$tw1" \
    --expect-2xx || die "scenario $id (${LABEL[$id]}) saw non-2xx responses, see above"
}

log "$RUNS round(s) of ${#SCENARIOS[@]} scenarios, $DURATION each after a $WARMUP warm-up, $CONNECTIONS connections"
LOCAL_HITS_B0="$(cache_metric "$ADM_B" local_hits_total)"
REDIS_HITS_B0="$(cache_metric "$ADM_B" redis_hits_total)"
for round in $(seq 1 "$RUNS"); do
  for id in "${SCENARIOS[@]}"; do
    log "round $round/$RUNS: ${LABEL[$id]}"
    measure "$id" "$round"
  done
done
LOCAL_HITS_B="$(($(cache_metric "$ADM_B" local_hits_total) - LOCAL_HITS_B0))"
REDIS_HITS_B="$(($(cache_metric "$ADM_B" redis_hits_total) - REDIS_HITS_B0))"
((LOCAL_HITS_B == 0 && REDIS_HITS_B > 0)) \
  || die "S6 is not Redis-only: in-process tier hits $LOCAL_HITS_B, Redis hits $REDIS_HITS_B during the runs"
NOTE_S6="S6: cache.local.capacity: 0 disables the in-process tier; during the runs instance B counted $LOCAL_HITS_B in-process hits and $REDIS_HITS_B Redis hits"
stop_servers
IDLE_AFTER="$(py idle-check --seconds 1)"

# --- scenario 9: login bench ----------------------------------------------------------------------------------------
if [[ "$SKIP_LOGIN" != 1 ]]; then
  for round in $(seq 1 "$RUNS"); do
    log "round $round/$RUNS: API login vs raw argon2id verify (cargo bench -p tests --bench login, CPUs ${SERVER_CPUS:-all})"
    (cd "$ROOT" && pin_server cargo bench -p tests --bench login) >"$TMP/login.$round.txt" 2>&1 \
      || die "cargo bench -p tests --bench login: $(tail -n 40 "$TMP/login.$round.txt")"
    py login --out "$LOGINS_FILE" --round "$round" "$TMP/login.$round.txt"
  done
fi

# --- scenario 10: cold start ------------------------------------------------------------------------------------
for round in $(seq 1 "$RUNS"); do
  read -r P1 P2 P3 P4 < <(py ports 4)
  dir="$TMP/cold.$round"
  portcullis_conf "$dir" "$P1" "$P2" "$P3" "$P4" '{local: {capacity: 100000}}'
  ms="$(py coldstart --port "$P2" --log "$dir/server.log" --env TOKIO_WORKER_THREADS="$THREADS" \
    --env DSN="sqlite://$dir/db.sqlite?mode=rwc" -- \
    ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "$BIN" serve --dev --config "$dir/config.yml")" \
    || die "cold start failed"
  log "round $round/$RUNS: cold start to ready: $ms ms"
  extra ready_ms "$ms"
done

# --- report -----------------------------------------------------------------------------------------------------------
scenario_args=()
for id in "${SCENARIOS[@]}"; do scenario_args+=(--scenario "$id|${LABEL[$id]}|${URL[$id]}"); done
py meta --out "$TMP/meta.json" --nproc "$NPROC" "${scenario_args[@]}" \
  --setting runs="$RUNS" --setting duration="$DURATION" --setting warmup="$WARMUP" \
  --setting connections="$CONNECTIONS" --setting threads="$THREADS" --setting wrk_threads="$WRK_THREADS" \
  --setting server_cpus="$SERVER_CPUS" --setting load_cpus="$LOAD_CPUS" --setting binary="$BIN" \
  --note "$NOTE_S6" --idle-before "$IDLE_BEFORE" --idle-after "$IDLE_AFTER"
py report --meta "$TMP/meta.json" --runs "$RUNS_FILE" --logins "$LOGINS_FILE" --extra "$EXTRA_FILE" --out-dir "$OUT_DIR"
