#!/usr/bin/env python3
"""Helpers of tests/bench/run.sh (stdlib only): free ports, JWK conversion, wrk/proc parsing, cold start timing and
the final report. Every subcommand is called by run.sh; see `bench.py -h`."""

import argparse
import base64
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

# --- small utilities -------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def die(msg: str) -> None:
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def cmd_ports(args):
    """N distinct free loopback ports, chosen by the OS (bind to port 0)."""
    socks = []
    for _ in range(args.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


# --- keys and tokens --------------------------------------------------------------------------------------------


def der_items(data: bytes):
    """Yields (tag, value) of every DER TLV, descending into SEQUENCEs, context tags and OCTET/BIT STRINGs that hold
    DER themselves (PKCS#8 wraps the SEC1 key in an OCTET STRING)."""
    i = 0
    while i < len(data):
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        value = data[i : i + length]
        i += length
        yield tag, value
        if tag in (0x30, 0xA0, 0xA1) or tag == 0x04 and value[:1] == b"\x30":
            try:
                yield from der_items(value)
            except (IndexError, ValueError):
                pass


def cmd_jwk(args):
    """EC P-256 private key (DER, SEC1 or PKCS#8, from `openssl ec -outform DER`) -> private and public JWKS."""
    der = open(args.der, "rb").read()
    d = pub = None
    p256 = bytes.fromhex("06082a8648ce3d030107")[2:]  # OID 1.2.840.10045.3.1.7 (prime256v1)
    curve_ok = False
    for tag, value in der_items(der):
        if tag == 0x04 and len(value) == 32 and d is None:
            d = value
        elif tag == 0x03 and len(value) == 66 and value[:2] == b"\x00\x04":
            pub = value[2:]
        elif tag == 0x06 and value == p256:
            curve_ok = True
    if not (d and pub and curve_ok):
        die(f"{args.der}: not an EC P-256 private key with its public point")
    public = {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": args.kid,
              "x": b64url(pub[:32]), "y": b64url(pub[32:])}
    private = dict(public, d=b64url(d))
    with open(args.private, "w") as f:
        json.dump({"keys": [private]}, f)
    with open(args.public, "w") as f:
        json.dump({"keys": [public]}, f)


def cmd_jwt_claims(args):
    """The claims of a compact JWS (no verification: the server under test verifies it)."""
    parts = args.token.split(".")
    if len(parts) != 3:
        die("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    print(json.dumps({"header": header, "claims": claims}))


def cmd_json_get(args):
    """Prints the values at dotted paths of a JSON document read from stdin, space-separated on one line
    (strings as they are, anything else as compact JSON)."""
    doc = json.load(sys.stdin)
    out = []
    for path in args.paths:
        v = doc
        for key in path.split("."):
            v = v[int(key)] if isinstance(v, list) else v.get(key) if isinstance(v, dict) else None
        out.append(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
    print(" ".join(out))


def cmd_flow(args):
    """Login flow JSON (stdin) -> "flow_id csrf_token"."""
    flow = json.load(sys.stdin)
    csrf = next(n["attributes"]["value"] for n in flow["ui"]["nodes"]
                if n.get("attributes", {}).get("name") == "csrf_token")
    print(flow["id"], csrf)


# --- /proc ------------------------------------------------------------------------------------------------------


def process_tree(roots):
    """The root PIDs and all their live descendants (nginx workers are children of the master)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    seen, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def tree_ticks(root):
    total = 0
    for pid in process_tree([root]):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime: fields 14 and 15 of proc(5)
    return total


def cmd_cpu(args):
    """utime+stime (clock ticks) of the process tree of each given PID, comma-separated."""
    print(",".join(str(tree_ticks(pid)) for pid in args.pids))


def cpu_times():
    """Per CPU: (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + v[4]
                total = sum(v[:8])  # guest time is already in user
                out[int(m.group(1))] = (total - idle, total)
    return out


def cmd_idle_check(args):
    """Busy share of every CPU over `seconds` while nothing of the benchmark runs: anything else running on the
    machine makes the results noisy. Prints JSON."""
    a = cpu_times()
    time.sleep(args.seconds)
    b = cpu_times()
    busy = {cpu: round(100.0 * (b[cpu][0] - a[cpu][0]) / max(1, b[cpu][1] - a[cpu][1]), 1) for cpu in sorted(b)}
    top = []
    try:
        ps = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True,
                            text=True, timeout=5).stdout.split("\n")
        top = [" ".join(l.split()[::-1]) for l in ps[:4] if l.strip() and float(l.split()[0]) >= 5]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    print(json.dumps({"seconds": args.seconds, "busy_percent": busy, "top": top}))


def cmd_timewait(args):
    """Sockets in TIME-WAIT with one end on one of the given loopback ports (each closed connection leaves one for
    60 s): a steady stream of them during a run means keep-alive is not holding."""
    ports = {f"{p:04X}" for p in args.ports}
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "06" and (fields[1].rsplit(":", 1)[1] in ports or fields[2].rsplit(":", 1)[1] in ports):
                        count += 1
        except OSError:
            continue
    print(count)


def cmd_rss(args):
    """VmRSS (KiB) summed over the process trees of the given PIDs."""
    total = 0
    for pid in process_tree(args.pids):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    print(total)


# --- wrk --------------------------------------------------------------------------------------------------------

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def duration_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unknown duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(text: str) -> dict:
    out = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", text)
    if not m:
        raise ValueError("no 'N requests in T' line")
    out["requests"] = int(m.group(1))
    out["seconds"] = float(m.group(2)) * UNITS[m.group(3)] / 1000.0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", text, re.M)
        out[key] = duration_ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    return out


def cmd_record(args):
    """Parses one measured wrk run, adds CPU figures and appends it to the JSONL file of runs. Exits 3 when a
    scenario expecting 2xx saw anything else."""
    text = open(args.wrk).read()
    try:
        run = parse_wrk(text)
    except (ValueError, AttributeError) as e:
        die(f"{args.wrk}: cannot parse wrk output ({e}):\n{text}")
    before = [int(x) for x in args.ticks_before.split(",")]
    after = [int(x) for x in args.ticks_after.split(",")]
    per_process = [(b - a) / args.clk_tck for a, b in zip(before, after)]
    cpu_s = sum(per_process)
    names = args.names.split(",") if args.names else [f"p{i}" for i in range(len(per_process))]
    run.update(scenario=args.scenario, round=args.round, cpu_s=cpu_s,
               cpu_s_by_process=dict(zip(names, per_process)),
               server_cpu_utilisation=cpu_s / run["seconds"] if run["seconds"] else None,
               cpu_s_per_10k=cpu_s / run["requests"] * 10_000 if run["requests"] else None)
    if args.rss_kib is not None:
        run["rss_kib_after"] = args.rss_kib
    if args.timewait_before is not None:
        # TIME-WAIT sockets also expire (after 60 s), so this is a lower bound.
        run["closed_connections"] = max(0, args.timewait_after - args.timewait_before)
    if args.aux_ticks_before is not None:
        run["redis_cpu_s"] = (int(args.aux_ticks_after) - int(args.aux_ticks_before)) / args.clk_tck
    with open(args.out, "a") as f:
        f.write(json.dumps(run) + "\n")
    errors = sum(run["socket_errors"].values())
    print(f"    {run['rps']:>10.0f} req/s  p50 {fmt_ms(run['p50_ms'])}  p99 {fmt_ms(run['p99_ms'])}  "
          f"cpu {run['cpu_s_per_10k']:.3f} s/10k (server CPU busy {100 * run['server_cpu_utilisation']:.0f}%)  "
          f"non-2xx {run['non_2xx']}  socket errors {errors}  closed upstream conns {run.get('closed_connections', '?')}",
          file=sys.stderr)
    closed = run.get("closed_connections", 0)
    if run["requests"] and closed > run["requests"] / 100:
        print(f"bench.py: WARNING: scenario {args.scenario}: {closed} connections closed for {run['requests']} "
              f"requests on the upstream / decisions ports: keep-alive is not holding", file=sys.stderr)
        run["keepalive_warning"] = True
    if run["non_2xx"] and args.expect_2xx:
        print(f"bench.py: scenario {args.scenario} expects 2xx but wrk saw {run['non_2xx']} non-2xx responses "
              f"out of {run['requests']}:\n{text}", file=sys.stderr)
        sys.exit(3)
    if run["requests"] == 0:
        die(f"scenario {args.scenario}: wrk completed no request:\n{text}")


# --- login bench (scenario 9) -----------------------------------------------------------------------------------


def cmd_login(args):
    """Parses the output of `cargo bench -p tests --bench login` (tests/bench/login.rs) and appends it."""
    text = open(args.file).read()
    raw = re.search(r"raw argon2id verify:\s+([\d.]+)/s", text)
    native = re.search(r"native logins:\s+([\d.]+)/s", text)
    cores = re.search(r"cores: (\d+);", text)
    if not (raw and native):
        die(f"{args.file}: no 'raw argon2id verify' / 'native logins' lines in the login bench output:\n{text}")
    run = {"round": args.round, "verifies_per_s": float(raw.group(1)), "logins_per_s": float(native.group(1)),
           "cores": int(cores.group(1)) if cores else None}
    with open(args.out, "a") as f:
        f.write(json.dumps(run) + "\n")
    print(f"    raw verify {run['verifies_per_s']:.2f}/s, logins {run['logins_per_s']:.2f}/s", file=sys.stderr)


# --- cold start (scenario 10) -----------------------------------------------------------------------------------


def cmd_coldstart(args):
    """Spawns the command (after `--`) and polls http://127.0.0.1:PORT/admin/health/ready every 5 ms until it
    answers 200; prints the milliseconds from spawn to that answer. The process is stopped before returning."""
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    log = open(args.log, "wb")
    start = time.perf_counter()
    proc = subprocess.Popen(args.command, env=env, stdout=log, stderr=subprocess.STDOUT)
    ready_ms = None
    try:
        deadline = start + args.timeout
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=1)
                conn.request("GET", "/admin/health/ready")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    ready_ms = (time.perf_counter() - start) * 1000.0
                    break
            except OSError:
                pass
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if ready_ms is None:
        log.close()
        die(f"cold start: not ready within {args.timeout}s (exit status {proc.returncode}):\n"
            + open(args.log, errors="replace").read()[-4000:])
    print(f"{ready_ms:.1f}")


# --- report -----------------------------------------------------------------------------------------------------


def cmd_meta(args):
    """What the report needs besides the measurements: machine, settings, scenarios, notes. Writes JSON."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    scenarios = []
    for spec in args.scenario:
        sid, label, url = spec.split("|", 2)
        scenarios.append({"id": sid, "label": label, "url": url, "expect": 200})
    meta = {
        "machine": {"nproc": args.nproc, "cpu": cpu, "kernel": os.uname().release},
        "settings": dict(kv.split("=", 1) for kv in args.setting),
        "scenarios": scenarios,
        "notes": args.note,
        "idle_check": {"before": json.loads(args.idle_before), "after": json.loads(args.idle_after)},
    }
    with open(args.out, "w") as f:
        json.dump(meta, f, indent=2)


def fmt_ms(v):
    if v is None:
        return "–"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def read_jsonl(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cmd_report(args):
    meta = json.load(open(args.meta))
    runs = read_jsonl(args.runs)
    logins = read_jsonl(args.logins)
    extra = read_jsonl(args.extra)  # {"kind": ..., "value": ...} lines: rss, cold start

    scenarios = []
    for sc in meta["scenarios"]:
        mine = [r for r in runs if r["scenario"] == sc["id"]]
        med = {k: median([r.get(k) for r in mine]) for k in ("rps", "p50_ms", "p99_ms", "cpu_s_per_10k")}
        med["non_2xx"] = sum(r["non_2xx"] for r in mine)
        med["socket_errors"] = sum(sum(r["socket_errors"].values()) for r in mine)
        scenarios.append(dict(sc, runs=mine, median=med))
    by_id = {s["id"]: s for s in scenarios}
    base = by_id.get("S2", {}).get("median", {}).get("rps")
    bare = by_id.get("S0", {}).get("median", {}).get("rps")
    base_by_round = {r["round"]: r["rps"] for r in by_id.get("S2", {}).get("runs", [])}
    for s in scenarios:
        rps = s["median"]["rps"]
        s["ratio_vs_s2"] = rps / base if rps and base else None  # of the medians
        s["ratio_vs_s0"] = rps / bare if rps and bare else None
        s["ratio_vs_s2_by_round"] = [r["rps"] / base_by_round[r["round"]] for r in s["runs"]
                                     if base_by_round.get(r["round"])]

    def values(kind):
        return [e["value"] for e in extra if e["kind"] == kind]

    rss_after = [r["rss_kib_after"] for r in by_id.get("S5", {}).get("runs", []) if "rss_kib_after" in r]
    memory = {
        "portcullis_idle_kib": median(values("portcullis_idle_rss_kib")),
        "portcullis_after_s5_kib": max(rss_after) if rss_after else None,
        "portcullis_after_s5_kib_runs": rss_after,
        "nginx_idle_kib": median(values("nginx_idle_rss_kib")),
    }
    startup = {"ready_ms_runs": values("ready_ms"), "ready_ms": median(values("ready_ms"))}
    login = None
    if logins:
        v, l = median([r["verifies_per_s"] for r in logins]), median([r["logins_per_s"] for r in logins])
        login = {"runs": logins, "verifies_per_s": v, "logins_per_s": l, "ratio": l / v if v else None}

    def ratio(a, b):
        ra, rb = by_id.get(a, {}).get("median", {}).get("rps"), by_id.get(b, {}).get("median", {}).get("rps")
        return ra / rb if ra and rb else None

    mib = lambda kib: kib / 1024 if kib is not None else None
    checks = [
        ("S4 ≥ 0.97 × S0 (edge anonymous vs bare Pingora)", ratio("S4", "S0"), 0.97, "ratio"),
        ("S5 ≥ 0.95 × S0 (edge cookie session vs bare Pingora)", ratio("S5", "S0"), 0.95, "ratio"),
        ("S6 ≥ 0.75 × S0 (edge, every session from Redis, vs bare Pingora)", ratio("S6", "S0"), 0.75, "ratio"),
        ("S8 ≥ 1.3 × S0 (edge whoami, no upstream hop, vs bare Pingora)", ratio("S8", "S0"), 1.3, "ratio"),
        ("S5 ≥ 0.9 × S2 (edge cookie session vs nginx proxy_pass)", ratio("S5", "S2"), 0.9, "ratio"),
        ("S5 ≥ 1.5 × S3 (edge vs nginx auth_request + decisions)", ratio("S5", "S3"), 1.5, "ratio"),
        ("S6 ≥ 0.6 × S2 (edge, every session from Redis)", ratio("S6", "S2"), 0.6, "ratio"),
        ("S9 ≥ 0.9 × raw argon2id verify (API logins/s)", login["ratio"] if login else None, 0.9, "ratio"),
        ("Portcullis idle RSS < 30 MiB", mib(memory["portcullis_idle_kib"]), 30, "max"),
        ("cold start to ready < 200 ms", startup["ready_ms"], 200, "max"),
    ]
    check_rows = []
    for name, measured, target, kind in checks:
        if measured is None:
            verdict = "SKIP"
        elif kind == "ratio":
            verdict = "PASS" if measured >= target else "MISS"
        else:
            verdict = "PASS" if measured < target else "MISS"
        check_rows.append({"check": name, "measured": measured, "target": target, "result": verdict})

    # The one table.
    def cell(v, f):
        return f(v) if v is not None else "–"

    lines = ["| scenario | req/s (median) | p50 | p99 | CPU s/10k req | ratio vs S2 | ratio vs S0 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in scenarios:
        m = s["median"]
        lines.append(f"| {s['label']} | {cell(m['rps'], lambda v: f'{v:,.0f}')} | {fmt_ms(m['p50_ms'])} | "
                     f"{fmt_ms(m['p99_ms'])} | {cell(m['cpu_s_per_10k'], lambda v: f'{v:.3f}')} | "
                     f"{cell(s['ratio_vs_s2'], lambda v: f'{v:.2f}')} | "
                     f"{cell(s['ratio_vs_s0'], lambda v: f'{v:.2f}')} |")
    if login:
        lines.append(f"| 9a. raw argon2id verify, default params (no server) | {login['verifies_per_s']:.2f} verifies/s "
                     f"| – | – | – | – |")
        lines.append(f"| 9b. API login (flow init + submit, argon2id default) | {login['logins_per_s']:.2f} logins/s "
                     f"| – | – | – | {login['ratio']:.2f} × 9a |")
    else:
        lines.append("| 9. API login vs raw argon2id verify | skipped (SKIP_LOGIN=1) | – | – | – | – |")
    lines.append(f"| 10a. Portcullis RSS, idle after start | {cell(mib(memory['portcullis_idle_kib']), lambda v: f'{v:.1f} MiB')} "
                 f"| – | – | – | – |")
    lines.append(f"| 10b. Portcullis RSS, right after S5 load (max of runs) | "
                 f"{cell(mib(memory['portcullis_after_s5_kib']), lambda v: f'{v:.1f} MiB')} | – | – | – | – |")
    lines.append(f"| 10c. nginx RSS, idle (master + workers) | {cell(mib(memory['nginx_idle_kib']), lambda v: f'{v:.1f} MiB')} "
                 f"| – | – | – | – |")
    lines.append(f"| 10d. Portcullis cold start to ready (fresh SQLite) | {cell(startup['ready_ms'], lambda v: f'{v:.0f} ms')} "
                 f"| – | – | – | – |")
    table = "\n".join(lines)

    def shown(row):
        v = row["measured"]
        if v is None:
            return "–"
        if "ratio" in row["check"] or "×" in row["check"]:
            return f"{v:.2f}×"
        return f"{v:.1f} MiB" if "MiB" in row["check"] else f"{v:.0f} ms"

    m = meta["machine"]
    s = meta["settings"]
    header = [
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}",
        f"Settings: RUNS={s['runs']} (median), DURATION={s['duration']} (+2 s warm-up), "
        f"CONNECTIONS={s['connections']}, THREADS={s['threads']} (nginx worker_processes = Portcullis tokio workers), "
        f"wrk -t{s['wrk_threads']}; servers under test on CPUs {s['server_cpus'] or 'unpinned'}, "
        f"wrk + upstream + redis on CPUs {s['load_cpus'] or 'unpinned'}",
        "",
    ]
    footer = ["", "Targets:", ""]
    for row in check_rows:
        footer.append(f"- {row['result']}: {row['check']}: measured {shown(row)}")
    notes = list(meta.get("notes", []))
    for sc in scenarios:
        split = {}
        for r in sc["runs"]:
            for name, cpu_s in r.get("cpu_s_by_process", {}).items():
                split.setdefault(name, []).append(cpu_s / r["requests"] * 10_000)
        if len(split) > 1:
            parts = ", ".join(f"{name} {median(v):.3f}" for name, v in split.items())
            notes.append(f"{sc['id']}: CPU s/10k req split: {parts}")
        redis = [r["redis_cpu_s"] / r["requests"] * 10_000 for r in sc["runs"] if "redis_cpu_s" in r]
        if redis:
            notes.append(f"{sc['id']}: Redis (on the load CPUs, not in the table) used {median(redis):.3f} CPU s/10k req")
    for sc in scenarios:
        churn = [r.get("closed_connections", 0) for r in sc["runs"] if r.get("keepalive_warning")]
        if churn:
            notes.insert(0, f"WARNING: {sc['id']}: keep-alive to the upstream / decisions API is not holding "
                            f"({max(churn)} connections closed in a run)")
    for when in ("after", "before"):  # each goes first: "before" ends up on top
        idle = meta.get("idle_check", {}).get(when)
        if idle and max(idle["busy_percent"].values(), default=0) > args.busy_threshold:
            busy = ", ".join(f"CPU {c} {p:.0f}%" for c, p in idle["busy_percent"].items())
            notes.insert(0, f"WARNING: the machine was not idle {when} the runs ({busy} busy with nothing of the "
                            f"benchmark running; top: {'; '.join(idle['top']) or '?'}): throughput and latency "
                            f"figures are noisy")
    if notes:
        footer += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    text = "\n".join(header) + table + "\n" + "\n".join(footer) + "\n"

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "results.md"), "w") as f:
        f.write(text)
    results = {"machine": m, "settings": s, "idle_check": meta.get("idle_check"), "scenarios": scenarios,
               "login": login, "memory": memory, "startup": startup, "checks": check_rows, "notes": notes}
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    sys.stdout.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    a = sub.add_parser("ports")
    a.add_argument("n", type=int)
    a.set_defaults(func=cmd_ports)

    a = sub.add_parser("jwk")
    a.add_argument("der")
    a.add_argument("private")
    a.add_argument("public")
    a.add_argument("--kid", default="bench-1")
    a.set_defaults(func=cmd_jwk)

    a = sub.add_parser("jwt-claims")
    a.add_argument("token")
    a.set_defaults(func=cmd_jwt_claims)

    a = sub.add_parser("json-get")
    a.add_argument("paths", nargs="+")
    a.set_defaults(func=cmd_json_get)

    a = sub.add_parser("flow")
    a.set_defaults(func=cmd_flow)

    for name, func in (("cpu", cmd_cpu), ("rss", cmd_rss)):
        a = sub.add_parser(name)
        a.add_argument("pids", nargs="+", type=int)
        a.set_defaults(func=func)

    a = sub.add_parser("timewait")
    a.add_argument("ports", nargs="+", type=int)
    a.set_defaults(func=cmd_timewait)

    a = sub.add_parser("idle-check")
    a.add_argument("--seconds", type=float, default=1.0)
    a.set_defaults(func=cmd_idle_check)

    a = sub.add_parser("record")
    a.add_argument("--out", required=True)
    a.add_argument("--scenario", required=True)
    a.add_argument("--round", type=int, required=True)
    a.add_argument("--wrk", required=True)
    a.add_argument("--ticks-before", required=True, help="comma-separated, one per process tree")
    a.add_argument("--ticks-after", required=True)
    a.add_argument("--names", help="comma-separated names of those process trees")
    a.add_argument("--timewait-before", type=int)
    a.add_argument("--timewait-after", type=int)
    a.add_argument("--aux-ticks-before")
    a.add_argument("--aux-ticks-after")
    a.add_argument("--clk-tck", type=int, required=True)
    a.add_argument("--rss-kib", type=int)
    a.add_argument("--expect-2xx", action="store_true")
    a.set_defaults(func=cmd_record)

    a = sub.add_parser("login")
    a.add_argument("--out", required=True)
    a.add_argument("--round", type=int, required=True)
    a.add_argument("file")
    a.set_defaults(func=cmd_login)

    a = sub.add_parser("coldstart")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--log", required=True)
    a.add_argument("--timeout", type=float, default=30)
    a.add_argument("--env", action="append", default=[])
    a.add_argument("command", nargs=argparse.REMAINDER)
    a.set_defaults(func=cmd_coldstart)

    a = sub.add_parser("meta")
    a.add_argument("--out", required=True)
    a.add_argument("--nproc", type=int, required=True)
    a.add_argument("--setting", action="append", default=[], help="key=value")
    a.add_argument("--scenario", action="append", default=[], help="id|label|url")
    a.add_argument("--note", action="append", default=[])
    a.add_argument("--idle-before", required=True, help="idle-check JSON")
    a.add_argument("--idle-after", required=True, help="idle-check JSON")
    a.set_defaults(func=cmd_meta)

    a = sub.add_parser("report")
    a.add_argument("--meta", required=True)
    a.add_argument("--runs", required=True)
    a.add_argument("--logins")
    a.add_argument("--extra")
    a.add_argument("--out-dir", required=True)
    a.add_argument("--busy-threshold", type=float, default=10.0, help="percent of a CPU")
    a.set_defaults(func=cmd_report)

    args = p.parse_args()
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    args.func(args)


if __name__ == "__main__":
    main()
