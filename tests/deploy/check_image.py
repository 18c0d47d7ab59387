"""Checks of deploy/Dockerfile and /.dockerignore that need no Docker engine.

Usage: check_image.py --root REPO --bin PORTCULLIS [--copy-context DIR]

  * the build context that /.dockerignore leaves (Docker's rules: patterns match a path or any of its parents,
    `*`, `?`, `**`, `!` exceptions, the last matching line wins) holds what `cargo build -p proxy --locked`
    needs (the workspace manifests, Cargo.lock, every member's sources and explicit targets, migrations/) and
    none of target/, .git, node_modules or virtualenvs; --copy-context DIR writes that context to DIR, so that
    validate.sh can load the workspace from it with `cargo metadata`;
  * the Dockerfile: a rust:*-slim-bookworm builder that installs the README's build prerequisites and runs
    `cargo build --release -p proxy --locked`; a runtime stage that installs libssl3 when the binary links
    libssl.so.3 (ldd), ca-certificates and the HEALTHCHECK's HTTP client, runs as 65532, exposes the default
    ports of deploy/config.reference.yaml, declares the SQLite volume that its DSN points into, checks
    /health/ready on the public port, and has the entrypoint `portcullis` with the command `serve`.

Prints one line per check and exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

FAILURES: list[str] = []
PASSED = 0


def check(ok: bool, what: str) -> bool:
    global PASSED
    if ok:
        PASSED += 1
        print(f"  ok    {what}")
    else:
        FAILURES.append(what)
        print(f"  FAIL  {what}")
    return ok


# ---- .dockerignore ----------------------------------------------------------------------------------------


def pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "^", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            j = pattern.index("]", i + 1)
            body = pattern[i + 1 : j]
            if body.startswith("^"):
                body = "^" + re.escape(body[1:])
            else:
                body = re.escape(body).replace("\\-", "-")
            out, i = out + f"[{body}]", j + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def load_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        rules.append((negate, pattern_regex(line)))
    return rules


def excluded(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, rx in rules:
        if any(rx.match(p) for p in prefixes):
            result = not negate
    return result


def build_context(root: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> list[str]:
    has_exceptions = any(neg for neg, _ in rules)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        reldir = os.path.relpath(dirpath, root)
        reldir = "" if reldir == "." else reldir
        if not has_exceptions:  # an excluded directory cannot hold an included file
            dirnames[:] = [d for d in dirnames if not excluded(f"{reldir}/{d}".lstrip("/"), rules)]
        for f in filenames:
            rel = f"{reldir}/{f}".lstrip("/")
            if not excluded(rel, rules):
                files.append(rel)
    return sorted(files)


def check_context(root: Path, copy_to: Path | None) -> None:
    print("build context (.dockerignore)")
    rules = load_dockerignore(root / ".dockerignore")
    files = build_context(root, rules)
    fileset = set(files)
    size = sum((root / f).stat().st_size for f in files)
    check(size < 32 * 1024 * 1024, f"the context is small: {len(files)} files, {size / 1048576:.1f} MiB")

    for must in ["Cargo.toml", "Cargo.lock", "identity/build.rs", "proxy/src/main.rs"]:
        check(must in fileset, f"the context has {must}")
    workspace = tomllib.loads((root / "Cargo.toml").read_text())
    for member in workspace["workspace"]["members"]:
        manifest = tomllib.loads((root / member / "Cargo.toml").read_text())
        check(f"{member}/Cargo.toml" in fileset, f"the context has the workspace member {member}/Cargo.toml")
        tracked = [f for f in git_files(root) if f.startswith(f"{member}/") and f.endswith(".rs")]
        missing = [f for f in tracked if f not in fileset]
        check(not missing, f"the context has every tracked .rs file of {member} ({len(tracked)}){fmt(missing)}")
        for kind in ("bin", "test", "bench", "example"):
            for target in manifest.get(kind, []):
                if "path" in target:
                    p = f"{member}/{target['path']}"
                    check(p in fileset, f"the context has the [[{kind}]] target {p}")
    for backend in ("sqlite", "postgres"):
        tracked = [f for f in git_files(root) if f.startswith(f"migrations/{backend}/")]
        check(tracked and all(f in fileset for f in tracked), f"the context has migrations/{backend} ({len(tracked)} files)")

    for prefix in (".git/", "target/", "deploy/"):
        bad = [f for f in files if f.startswith(prefix)]
        check(not bad, f"the context leaves out {prefix}{fmt(bad)}")
    for part in ("node_modules", ".venv", "__pycache__"):
        bad = [f for f in files if f"/{part}/" in f"/{f}"]
        check(not bad, f"the context leaves out every {part}/{fmt(bad)}")
    # What the rules exclude even when the tree does not have it now.
    for probe in ["target/release/portcullis", "tests/ui/node_modules/x/index.js", "tests/sdk/.venv/bin/python",
                  "portcullis.db", "flows/src/__pycache__/x.pyc", ".git/HEAD"]:
        check(excluded(probe, rules), f".dockerignore excludes {probe}")

    if copy_to is not None:
        if copy_to.exists():
            shutil.rmtree(copy_to)
        for f in files:
            dst = copy_to / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, dst)
        print(f"  (context copied to {copy_to})")


_GIT_FILES: list[str] | None = None


def git_files(root: Path) -> list[str]:
    global _GIT_FILES
    if _GIT_FILES is None:
        out = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, text=True, check=True)
        _GIT_FILES = [f for f in out.stdout.splitlines() if (root / f).exists()]
    return _GIT_FILES


def fmt(items: list[str]) -> str:
    return f": {', '.join(items[:5])}{' …' if len(items) > 5 else ''}" if items else ""


# ---- Dockerfile -------------------------------------------------------------------------------------------


def dockerfile_stages(path: Path) -> list[dict]:
    """Instructions per stage: [{'from': str, 'name': str|None, 'ins': [(INSTR, args)]}], with ARG defaults
    substituted into FROM."""
    logical: list[str] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    args: dict[str, str] = {}
    stages: list[dict] = []
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        if instr == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        elif instr == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest.split()[0])
            name = rest.split()[2] if len(rest.split()) >= 3 and rest.split()[1].upper() == "AS" else None
            stages.append({"from": image, "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((instr, rest))
    return stages


def exec_form(args: str) -> list[str]:
    import json

    return json.loads(args) if args.startswith("[") else shlex.split(args)


def check_dockerfile(root: Path, binary: Path) -> None:
    print("deploy/Dockerfile")
    stages = dockerfile_stages(root / "deploy/Dockerfile")
    check(len(stages) >= 2, f"multi-stage ({len(stages)} stages)")
    builder, runtime = stages[0], stages[-1]
    check(re.fullmatch(r"rust:[\w.]+-slim-bookworm", builder["from"]) is not None,
          f"the builder is rust:*-slim-bookworm ({builder['from']})")
    build_runs = " ".join(a for i, a in builder["ins"] if i == "RUN")
    readme = (root / "README.md").read_text()
    m = re.search(r"Debian: `apt-get install ([^`]+)`", readme)
    prereqs = m.group(1).split() if m else []
    check(bool(prereqs), f"the README names the build prerequisites ({' '.join(prereqs)})")
    for pkg in prereqs:
        check(re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", build_runs) is not None, f"the builder installs {pkg}")
    check("cargo build --release -p proxy --locked" in build_runs, "the builder runs cargo build --release -p proxy --locked")

    check(runtime["from"] in ("debian:bookworm-slim",) or runtime["from"].startswith("gcr.io/distroless/cc-debian12"),
          f"the runtime image is debian:bookworm-slim or distroless/cc-debian12 ({runtime['from']})")
    rt = runtime["ins"]
    rt_runs = " ".join(a for i, a in rt if i == "RUN")
    copies = [a for i, a in rt if i == "COPY"]
    check(any("--from=builder" in c and c.split()[-1] == "/usr/local/bin/portcullis" for c in copies),
          "the runtime copies the binary from the builder to /usr/local/bin/portcullis")
    ldd = shutil.which("ldd")
    if ldd:
        libs = subprocess.run([ldd, str(binary)], capture_output=True, text=True).stdout
        if "libssl.so.3" in libs:
            check("libssl3" in rt_runs or "distroless" in runtime["from"],
                  "the binary links libssl.so.3 and the runtime installs libssl3")
        check("ca-certificates" in rt_runs or "distroless" in runtime["from"], "the runtime installs ca-certificates")
    users = [a for i, a in rt if i == "USER"]
    check(bool(users) and users[-1].split(":")[0] in ("65532", "nonroot"), f"the runtime runs as 65532 ({users[-1:] or 'root'})")
    check("useradd" in rt_runs and "--uid 65532" in rt_runs or "distroless" in runtime["from"],
          "the runtime creates the user 65532")

    ref = yaml.safe_load((root / "deploy/config.reference.yaml").read_text())
    ports = {name: ref["serve"][name]["port"] for name in ("public", "admin", "proxy", "api")}
    exposed = {int(p.split("/")[0]) for i, a in rt if i == "EXPOSE" for p in a.split()}
    check(set(ports.values()) <= exposed, f"EXPOSE has every default port {sorted(ports.values())} ({sorted(exposed)})")
    volumes = [v for i, a in rt if i == "VOLUME" for v in exec_form(a)]
    check("/var/lib/portcullis" in volumes, f"VOLUME /var/lib/portcullis ({volumes})")
    envs = " ".join(a for i, a in rt if i == "ENV")
    dsn = re.search(r'DSN="?(sqlite://[^"\s]+)', envs)
    check(dsn is not None and dsn.group(1).startswith("sqlite:///var/lib/portcullis/"),
          f"the default DSN is SQLite inside the volume ({dsn.group(1) if dsn else None})")
    checks = [a for i, a in rt if i == "HEALTHCHECK"]
    hc = checks[-1] if checks else ""
    check(f"127.0.0.1:{ports['public']}/health/ready" in hc,
          f"HEALTHCHECK polls /health/ready on the default public port {ports['public']}")
    hc_cmd = exec_form(hc.split("CMD", 1)[1].strip())[0] if "CMD" in hc else ""
    check(bool(hc_cmd) and (hc_cmd in rt_runs or hc_cmd == "portcullis"),
          f"the runtime installs the HEALTHCHECK's program ({hc_cmd})")
    entry = [exec_form(a) for i, a in rt if i == "ENTRYPOINT"]
    cmd = [exec_form(a) for i, a in rt if i == "CMD"]
    check((entry[-1:] + cmd[-1:]) == [["portcullis"], ["serve"]] or entry[-1:] == [["portcullis", "serve"]],
          f"the entrypoint runs portcullis serve ({entry[-1:]} {cmd[-1:]})")
    stop = [a for i, a in rt if i == "STOPSIGNAL"]
    check(stop in ([], ["SIGTERM"]), "the stop signal is SIGTERM (graceful drain)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--bin", type=Path, required=True)
    ap.add_argument("--copy-context", type=Path)
    a = ap.parse_args()
    check_context(a.root, a.copy_context)
    check_dockerfile(a.root, a.bin)
    print(f"image: {PASSED} passed, {len(FAILURES)} failed")
    for f in FAILURES:
        print(f"  failed: {f}", file=sys.stderr)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
