#!/usr/bin/env bash
# Instructions per request under callgrind: a measure that, unlike req/s, does not move with the machine's load.
# Runs the bare Pingora pass-through (S0) and one Portcullis instance (S4 anonymous + noop, S5 cookie session +
# header mutator, S8 edge whoami) under `valgrind --tool=callgrind` with the same rules as tests/bench/run.sh, and
# drives each scenario with WARMUP then N sequential requests on one keep-alive connection (tests/bench/drive.py).
# The profile is dumped (and zeroed) right before and right after the N requests (`callgrind_control -d`), so the
# measured part holds nothing but those requests (and whatever timers fired meanwhile): Ir / N per scenario.
# Only user space is counted (no kernel, unlike the CPU seconds of run.sh).
#
# Usage: tests/bench/callgrind.sh
# Env:   BIN, BARE_BIN   binaries (default: target/release/portcullis and target/release/examples/bare_pingora;
#                        build them with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for readable profiles)
#        N (2000), WARMUP (200), SCENARIOS ("S0 S4 S5 S8")
#        OUT            where the profiles go (default target/bench/callgrind); the measured dump of each scenario
#                       is OUT/<scenario>.out, for `callgrind_annotate --inclusive=yes OUT/S5.out`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/bench"
BIN="${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}"
BARE_BIN="${BARE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bare_pingora}"
N="${N:-2000}"
WARMUP="${WARMUP:-200}"
SCENARIOS="${SCENARIOS:-S0 S4 S5 S8}"
OUT="${OUT:-$ROOT/target/bench/callgrind}"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'callgrind: FAILED: %s\n' "$*" >&2; exit 1; }
py() { python3 "$HERE/bench.py" "$@"; }
for tool in valgrind callgrind_control curl python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done
[[ -x "$BIN" ]] || die "$BIN is not an executable"
[[ -x "$BARE_BIN" ]] || die "$BARE_BIN is not an executable"

mkdir -p "$OUT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-callgrind.XXXXXX")"
PIDS=()
cleanup() {
  local status=$? p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "callgrind: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # url what log
  for _ in $(seq 1 1200); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "$2 did not become ready at $1; log:"$'\n'"$(tail -n 40 "$3" 2>/dev/null)"
}

read -r UP BARE PUB ADM API PRX < <(py ports 6)

# --- upstream: nginx `return 200 "hello\n"`, not profiled -------------------------------------------------------
mkdir -p "$TMP/upstream/logs"
user=""
if [[ "$(id -u)" -eq 0 ]]; then user="user root;"; fi
cat >"$TMP/upstream/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
pid $TMP/upstream/nginx.pid;
error_log $TMP/upstream/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/upstream/body; proxy_temp_path $TMP/upstream/proxy;
  fastcgi_temp_path $TMP/upstream/fcgi; uwsgi_temp_path $TMP/upstream/uwsgi; scgi_temp_path $TMP/upstream/scgi;
  server { listen 127.0.0.1:$UP; location / { return 200 "hello\\n"; } }
}
CONF
"$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" 2>>"$TMP/upstream/logs/error.log" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$UP/" "upstream nginx" "$TMP/upstream/logs/error.log"

# `profile NAME OUTFILE [VAR=VALUE…] CMD…`: start CMD under callgrind; sets STARTED_PID (`env` execs valgrind).
profile() {
  local name="$1" file="$2" vars=()
  shift 2
  while [[ "$1" == *=* ]]; do vars+=("$1"); shift; done
  env "${vars[@]}" valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$file" "$@" >"$TMP/$name.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}
# Dumps of one profiled process are numbered from 1; DUMPS[pid] counts them.
declare -A DUMPS
dump() { # pid
  callgrind_control -d "$1" >/dev/null || die "callgrind_control -d $1"
  DUMPS[$1]=$((${DUMPS[$1]:-0} + 1))
}
ir_of() { # file
  awk '/^(summary|totals):/ {print $2; exit}' "$1"
}
declare -A IR
measure() { # scenario pid file url status [header]
  local id="$1" pid="$2" file="$3" url="$4" status="$5"
  shift 5
  log "$id: $WARMUP warm-up requests, then $N measured ($url)"
  python3 "$HERE/drive.py" "$url" "$WARMUP" "$status" "$@" || die "$id warm-up"
  dump "$pid"
  python3 "$HERE/drive.py" "$url" "$N" "$status" "$@" || die "$id measured requests"
  dump "$pid"
  cp "$file.${DUMPS[$pid]}" "$OUT/$id.out"
  IR[$id]="$(ir_of "$OUT/$id.out")"
  log "$id: $((IR[$id] / N)) instructions per request"
}

# --- S0: bare Pingora ---------------------------------------------------------------------------------------------
if [[ " $SCENARIOS " == *" S0 "* ]]; then
  profile bare "$TMP/bare.cg" "$BARE_BIN" "127.0.0.1:$BARE" "127.0.0.1:$UP"
  BARE_PID=$STARTED_PID
  wait_http "http://127.0.0.1:$BARE/app" "bare Pingora" "$TMP/bare.log"
  measure S0 "$BARE_PID" "$TMP/bare.cg" "http://127.0.0.1:$BARE/app" 200
fi

# --- Portcullis: S4, S5, S8 ----------------------------------------------------------------------------------------
if [[ " $SCENARIOS " == *" S4 "* || " $SCENARIOS " == *" S5 "* || " $SCENARIOS " == *" S8 "* ]]; then
  rule() { # id prefix authenticators mutators
    printf '{"id": "%s", "match": {"url": "http://<[^/]+>/%s/<.*>", "methods": ["GET"]}, "upstream": {"url": "http://127.0.0.1:%s"}, "authenticators": %s, "authorizer": {"handler": "allow"}, "mutators": %s}' \
      "$1" "$2" "$UP" "$3" "$4"
  }
  {
    echo "["
    rule anon anon '[{"handler": "anonymous"}]' '[{"handler": "noop"}]'; echo ","
    rule cookie cookie '[{"handler": "cookie_session"}]' '[{"handler": "header", "config": {"preset": "portcullis"}}]'
    echo "]"
  } >"$TMP/rules.json"
  mkdir -p "$TMP/a"
  cat >"$TMP/a/config.yml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUB, base_url: "http://127.0.0.1:$PUB/"}
  admin: {host: 127.0.0.1, port: $ADM}
  api: {host: 127.0.0.1, port: $API}
  proxy: {host: 127.0.0.1, port: $PRX}
  shutdown_timeout: 1s
log: {level: error}
hashers: {algorithm: bcrypt, bcrypt: {cost: 4}}
selfservice: {methods: {password: {config: {haveibeenpwned_enabled: false}}}}
access_rules: {repositories: ["file://$TMP/rules.json"]}
cache: {local: {capacity: 100000}}
YAML
  profile portcullis "$TMP/portcullis.cg" TOKIO_WORKER_THREADS=1 DSN="sqlite://$TMP/a/db.sqlite?mode=rwc" \
    "$BIN" serve --dev --config "$TMP/a/config.yml"
  P_PID=$STARTED_PID
  wait_http "http://127.0.0.1:$ADM/admin/health/ready" "Portcullis" "$TMP/portcullis.log"
  PASSWORD="correct horse battery staple"
  jar="$TMP/a.jar"
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$ADM/admin/identities" -H 'Content-Type: application/json' \
    -d "{\"schema_id\":\"default\",\"traits\":{\"email\":\"bench@example.com\"},\"credentials\":{\"password\":{\"config\":{\"password\":\"$PASSWORD\"}}}}" \
    || die "creating an identity"
  flow="$(curl -fsS -c "$jar" -H 'Accept: application/json' "http://127.0.0.1:$PRX/self-service/login/browser")" \
    || die "starting a browser login flow"
  read -r flow_id csrf < <(py flow <<<"$flow")
  curl -fsS -o /dev/null -b "$jar" -c "$jar" -H 'Accept: application/json' -H 'Content-Type: application/json' \
    "http://127.0.0.1:$PRX/self-service/login?flow=$flow_id" \
    -d "{\"method\":\"password\",\"identifier\":\"bench@example.com\",\"password\":\"$PASSWORD\",\"csrf_token\":\"$csrf\"}" \
    || die "submitting the login flow"
  COOKIE="$(awk '$6 == "ory_kratos_session" {print $6 "=" $7}' "$jar")"
  [[ -n "$COOKIE" ]] || die "the login set no ory_kratos_session cookie"
  dump "$P_PID" # start-up and login
  if [[ " $SCENARIOS " == *" S4 "* ]]; then
    measure S4 "$P_PID" "$TMP/portcullis.cg" "http://127.0.0.1:$PRX/anon/app" 200
  fi
  if [[ " $SCENARIOS " == *" S5 "* ]]; then
    measure S5 "$P_PID" "$TMP/portcullis.cg" "http://127.0.0.1:$PRX/cookie/app" 200 "Cookie: $COOKIE"
  fi
  if [[ " $SCENARIOS " == *" S8 "* ]]; then
    measure S8 "$P_PID" "$TMP/portcullis.cg" "http://127.0.0.1:$PRX/sessions/whoami" 200 "Cookie: $COOKIE"
  fi
fi

# --- report ---------------------------------------------------------------------------------------------------------
base="${IR[S0]:-}"
printf '| scenario | Ir per request | vs S0 |\n|---|---:|---:|\n'
for id in $SCENARIOS; do
  [[ -n "${IR[$id]:-}" ]] || continue
  per=$((IR[$id] / N))
  ratio=""
  if [[ -n "$base" ]]; then ratio="$(python3 -c "print(f'{${IR[$id]} / $base:.2f}')")"; fi
  printf '| %s | %d | %s |\n' "$id" "$per" "$ratio"
done
log "profiles: $OUT/<scenario>.out (callgrind_annotate --inclusive=yes $OUT/S4.out)"
