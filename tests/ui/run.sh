#!/usr/bin/env bash
# Real-browser UI test: drives headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
# through the built-in self-service UI (/ui/*) of a freshly started Portcullis server backed by a
# throwaway SQLite database, with JavaScript enabled and disabled. See tests/ui/ui.test.mjs.
#
# Usage: tests/ui/run.sh [PATH_TO_PORTCULLIS_BINARY]
#   PATH_TO_PORTCULLIS_BINARY defaults to target/debug/portcullis (relative to the repo root).
# Needs node (>= 20) and npm, and Chromium at /usr/bin/chromium (apt-get install -y chromium).
# Screenshots of every checked page are written to target/ui-screenshots/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BIN="${1:-target/debug/portcullis}"
case "$BIN" in
  /*) ;;
  *) BIN="$ROOT/$BIN" ;;
esac
if [[ ! -x "$BIN" ]]; then
  echo "ui: portcullis binary not found or not executable: $BIN (build it with: cargo build -p proxy)" >&2
  exit 2
fi

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

# Two distinct free ports, chosen by the OS (both held open until both are known).
read -r PUBLIC_PORT ADMIN_PORT < <(node - <<'JS'
const net = require('node:net');
const open = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => resolve(s));
});
(async () => {
  const servers = [await open(), await open()];
  console.log(servers.map((s) => s.address().port).join(' '));
  for (const s of servers) s.close();
})();
JS
)

cat > "$TMP/config.yml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PUBLIC_PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
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
DSN="sqlite://$TMP/db.sqlite?mode=rwc" "$BIN" serve --dev --config "$TMP/config.yml" >"$LOG" 2>&1 &
SERVER_PID=$!

# Readiness poll, bounded to ~30 s; gives up early if the server process exits.
if ! node - "$ADMIN/admin/health/ready" "$SERVER_PID" <<'JS'
const fs = require('node:fs');
const [url, pidText] = process.argv.slice(2);
const pid = Number(pidText);
const alive = () => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try { // an exited, not yet reaped child is a zombie
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/)[0] !== 'Z';
  } catch {
    return true; // no procfs: rely on kill(pid, 0) alone
  }
};
(async () => {
  const deadline = Date.now() + 30_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!alive()) {
      console.error('ui: the server exited before becoming ready');
      process.exit(1);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) process.exit(0);
      last = `HTTP ${res.status}`;
    } catch (err) { // connection refused while starting
      last = String(err.cause ?? err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.error(`ui: the server did not become ready at ${url} within 30 s (last: ${last})`);
  process.exit(1);
})();
JS
then
  exit 1
fi

node tests/ui/ui.test.mjs --public "$PUBLIC" --screenshots "$SHOTS"
