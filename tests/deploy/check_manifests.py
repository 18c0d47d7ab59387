"""Offline checks of the Kubernetes manifests and the compose stack in deploy/.

Usage: check_manifests.py --root REPO --bin PORTCULLIS [--kubectl PATH] [--docker-compose PATH]

For every deploy/kubernetes/*/kustomization.yaml:
  * every document of its resources, and of `kubectl kustomize` output when --kubectl is given (the rendered
    set must hold the same objects), validates against the Kubernetes JSON schemas (kubernetes-validate,
    strict: unknown fields are errors) of every version from MIN_K8S to the newest the package ships;
  * consistency (check_documents, which check_helm.py runs on `helm template` output too): each Portcullis
    container (image `portcullis`) that serves has liveness and readiness probes on /health/alive and
    /health/ready of the port that serve.public.port of its config names; its --config file and the rules
    repositories are keys of a mounted ConfigMap; terminationGracePeriodSeconds exceeds the preStop sleep
    plus serve.shutdown_timeout; runAsNonRoot, readOnlyRootFilesystem, no privilege escalation; a SQLite
    DSN points into a writable volume; a CPU limit bounds the argon2 hashes that run at once, and the memory
    limit holds them; the environment comes from a Secret that exists and carries DSN and the secrets;
    Service targetPorts and selectors, the PDB, the HPA and the migration Job fit the Deployment;
  * `portcullis config check` accepts each ConfigMap's embedded config (with its Secret's values in the
    environment, as `serve` sees them) and `portcullis rules validate` its rules; every rule uses the
    cookie_session authenticator, a header mutator and a redirect to /ui/login.
For deploy/compose.yaml: `docker-compose config` accepts it (when --docker-compose is given); the mounted
config and rules pass `config check` / `rules validate` with the service's environment; the wiring (DSN,
Redis, SMTP, migration before serve, upstream host, stop grace period) is as documented.
Self-tests first show that each validator rejects a broken input, so that a pass means something.

Prints one line per check and exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from kubernetes_validate import utils as kv

MIN_K8S = "1.30"  # the `sleep` preStop action (beta, on by default) needs 1.30
FAILURES: list[str] = []
PASSED = 0
_RECORDING: list[list[str]] = []


def check(ok: bool, what: str, detail: str = "") -> bool:
    global PASSED
    if _RECORDING:  # inside recording(): note the failure, count nothing, print nothing
        if not ok:
            _RECORDING[-1].append(f"{what}{': ' + detail if detail else ''}")
        return ok
    if ok:
        PASSED += 1
        print(f"  ok    {what}")
    else:
        FAILURES.append(what)
        print(f"  FAIL  {what}{': ' + detail if detail else ''}")
    return ok


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Runs checks silently and yields the list of those that failed, for self-tests that show a check has teeth:
        with recording() as failed: check_documents(...)
    """
    _RECORDING.append([])
    try:
        yield _RECORDING[-1]
    finally:
        _RECORDING.pop()


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@functools.lru_cache(maxsize=None)
def versions() -> list[str]:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    mm = sorted({kv.major_minor(v) for v in kv.all_versions()}, key=key)
    return [v for v in mm if key(v) >= key(MIN_K8S)]


def schema_errors(doc: dict, version: str) -> str | None:
    try:
        kv.validate(doc, version, strict=True)
        return None
    except kv.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        return f"{where}: {e.message}"
    except kv.SchemaNotFoundError as e:
        return str(e)


def ident(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def go_duration(s: str | int | float) -> float:
    if isinstance(s, (int, float)):
        return float(s) / 1e9  # Go durations as bare numbers are nanoseconds
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    total, rest = 0.0, s.strip()
    for num, unit in re.findall(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", rest):
        total += float(num) * units[unit]
    if not re.fullmatch(r"([0-9.]+(ns|us|µs|ms|s|m|h))+", rest):
        raise ValueError(f"not a Go duration: {s!r}")
    return total


def quantity_bytes(q: str) -> float:
    m = re.fullmatch(r"([0-9.]+)([KMGTP]i?|[kmgtp]|e[0-9]+)?", str(q))
    if not m:
        raise ValueError(f"not a quantity: {q!r}")
    n, unit = float(m.group(1)), m.group(2) or ""
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    decimal = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    return n * binary.get(unit, decimal.get(unit, 1))


def quantity_cpu(q: str | int | float) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def bytesize(s: str) -> float:
    """hashers.argon2.memory (`128MB`); KB/MB/GB taken as binary units, the larger reading."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B?|B)?\s*", str(s), re.I)
    if not m:
        raise ValueError(f"not a byte size: {s!r}")
    unit = (m.group(2) or "B").upper().replace("I", "").rstrip("B") or "B"
    return float(m.group(1)) * {"B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]


def dig(d: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


class Portcullis:
    def __init__(self, binary: Path, reference: dict, tmp: Path):
        self.bin, self.ref, self.tmp = binary, reference, tmp
        self.n = 0

    def run(self, args: list[str], env: dict[str, str]) -> tuple[int, str]:
        full_env = {k: v for k, v in os.environ.items()
                    if not re.match(r"^(DSN|SECRETS_|SERVE_|CACHE_|COURIER_|SELFSERVICE_|LOG_)", k)}
        full_env.update(env)
        p = subprocess.run([str(self.bin), *args], env=full_env, capture_output=True, text=True, cwd=self.tmp)
        return p.returncode, (p.stdout + p.stderr).strip()

    def write(self, name: str, text: str) -> Path:
        self.n += 1
        path = self.tmp / f"{self.n:02d}-{name}"
        path.write_text(text)
        return path

    def config_check(self, label: str, config_text: str, env: dict[str, str]) -> None:
        cfg = self.write("config.yaml", config_text)
        rc, out = self.run(["config", "check", str(cfg)], env)
        check(rc == 0, f"{label}: `portcullis config check` accepts it", out)

    def rules_validate(self, label: str, config_text: str, rules_text: str, env: dict[str, str]) -> None:
        cfg = self.write("config.yaml", config_text)
        rules = self.write("rules.yaml", rules_text)
        rc, out = self.run(["rules", "validate", "--config", str(cfg), str(rules)], env)
        check(rc == 0, f"{label}: `portcullis rules validate` accepts the rules", out)


def check_rules_shape(label: str, rules_text: str) -> list[dict]:
    rules = yaml.safe_load(rules_text) or []
    check(isinstance(rules, list) and len(rules) > 0, f"{label}: the rules file is a non-empty list")
    for r in rules if isinstance(rules, list) else []:
        rid = r.get("id")
        authn = [a.get("handler") for a in r.get("authenticators", [])]
        muts = [m.get("handler") for m in r.get("mutators", [])]
        errs = r.get("errors", [])
        check("cookie_session" in authn, f"{label}: rule {rid} authenticates with cookie_session ({authn})")
        check("header" in muts, f"{label}: rule {rid} has a header mutator ({muts})")
        redirect = [e for e in errs if e.get("handler") == "redirect"]
        check(any(dig(e, "config", "to") == "/ui/login" for e in redirect),
              f"{label}: rule {rid} redirects browsers without a session to /ui/login")
        check(bool(dig(r, "upstream", "url")), f"{label}: rule {rid} has an upstream.url")
    return rules if isinstance(rules, list) else []


# ---- Kubernetes -------------------------------------------------------------------------------------------


def pod_specs(docs: list[dict]) -> Iterable[tuple[dict, dict, dict]]:
    """(workload doc, pod template metadata, pod spec) for Deployments, StatefulSets, DaemonSets and Jobs."""
    for d in docs:
        if d.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            tpl = dig(d, "spec", "template", default={})
            yield d, tpl.get("metadata", {}), tpl.get("spec", {})


def is_portcullis(container: dict) -> bool:
    image = container.get("image", "").split("@")[0]
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return repo.rsplit("/", 1)[-1] == "portcullis"


def presleep(container: dict) -> float:
    pre = dig(container, "lifecycle", "preStop", default={}) or {}
    if "sleep" in pre:
        return float(pre["sleep"]["seconds"])
    cmd = dig(pre, "exec", "command", default=[]) or []
    if cmd and os.path.basename(cmd[0]) == "sleep":
        return float(cmd[1])
    if len(cmd) >= 3 and os.path.basename(cmd[0]) in ("sh", "bash") and cmd[1] == "-c":
        m = re.search(r"\bsleep\s+([0-9.]+)", cmd[2])
        if m:
            return float(m.group(1))
    return 0.0


def arg_value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def mounted_file(path: str, container: dict, volumes: dict[str, dict], configmaps: dict[str, dict]) -> str | None:
    """The content of PATH when a ConfigMap volume mounted (as a directory) in the container provides it."""
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if os.path.dirname(path) == mp and "subPath" not in m:
            cm_name = dig(volumes.get(m["name"], {}), "configMap", "name")
            data = dig(configmaps.get(cm_name, {}), "data", default={}) or {}
            key = os.path.basename(path)
            items = dig(volumes.get(m["name"], {}), "configMap", "items")
            if items:
                key = next((i["key"] for i in items if i["path"] == os.path.basename(path)), None)
            if key in data:
                return data[key]
    return None


def writable_dir(path: str, container: dict, volumes: dict[str, dict]) -> bool:
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        vol = volumes.get(m["name"], {})
        if (path == mp or path.startswith(mp + "/")) and not m.get("readOnly") and (
            "emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol
        ):
            return True
    return False


def container_ports(spec: dict) -> dict[str, int]:
    ports: dict[str, int] = {}
    for c in spec.get("containers", []):
        for p in c.get("ports", []):
            ports[str(p["containerPort"])] = p["containerPort"]
            if "name" in p:
                ports[p["name"]] = p["containerPort"]
    return ports


def check_kustomization(kdir: Path, pc: Portcullis, kubectl: str | None) -> None:
    name = kdir.name
    print(f"deploy/kubernetes/{name}")
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    direct: list[dict] = []
    for res in kust.get("resources", []):
        path = kdir / res
        if not check(path.is_file(), f"{name}: resource {res} exists"):
            continue
        docs = load_docs(path)
        check(len(docs) > 0, f"{name}: {res} holds {len(docs)} document(s)")
        direct.extend(docs)
    listed = {p.name for p in kdir.glob("*.yaml")} - {"kustomization.yaml"}
    unlisted = sorted(listed - set(kust.get("resources", [])))
    check(not unlisted, f"{name}: every manifest in the directory is a listed resource", ", ".join(unlisted))

    rendered: list[dict] | None = None
    if kubectl:
        p = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, text=True)
        if check(p.returncode == 0, f"{name}: `kubectl kustomize` renders it", p.stderr.strip()):
            rendered = [d for d in yaml.safe_load_all(p.stdout) if d]
            check(sorted(map(ident, rendered)) == sorted(map(ident, direct)),
                  f"{name}: the rendered objects are the listed ones ({len(rendered)})")
            for img in kust.get("images", []):
                want = f"{img.get('newName', img['name'])}:{img['newTag']}" if "newTag" in img else img.get("newName")
                got = {c["image"] for _, _, s in pod_specs(rendered) for c in s.get("containers", [])
                       if is_portcullis(c)}
                check(got == {want}, f"{name}: kustomize sets the Portcullis image to {want}", str(got))

    for label, docs in (("listed", direct), ("rendered", rendered or [])):
        check_schemas(f"{name}: {label}", docs)
    check_documents(name, rendered if rendered is not None else direct, pc)


def check_schemas(label: str, docs: list[dict]) -> None:
    """Every document against the JSON schemas of every Kubernetes version from MIN_K8S on (strict)."""
    vers = versions()
    for doc in docs:
        errs = {v: schema_errors(doc, v) for v in vers}
        bad = {v: e for v, e in errs.items() if e}
        check(not bad, f"{label} {ident(doc)} is valid for Kubernetes {vers[0]}–{vers[-1]}",
              "; ".join(f"{v}: {e}" for v, e in list(bad.items())[:2]))


def secret_env(secret: dict) -> dict[str, str]:
    """A Secret's values as the environment of envFrom: data (base64) overlaid by stringData."""
    env = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    env.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return env


def check_documents(name: str, docs: list[dict], pc: Portcullis) -> None:
    """The consistency checks on one deployable set of documents, however it was produced (the listed or
    kustomize-rendered resources of a kustomization, or `helm template` output)."""
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Secret"}
    checked_configs: set[tuple[str, str]] = set()
    serving: list[tuple[dict, dict, dict, dict]] = []  # (workload, pod meta, pod spec, config)

    for wl, meta, spec in pod_specs(docs):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        pod_sc = spec.get("securityContext", {})
        check(spec.get("enableServiceLinks") is False,
              f"{name}: {ident(wl)} turns off service links (their *_PORT variables read as config keys)")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            if not is_portcullis(c):
                continue
            who = f"{name}: {ident(wl)} container {c['name']}"
            sc = c.get("securityContext", {})
            check(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{who} runs as non-root")
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            check(uid not in (None, 0), f"{who} has a non-zero runAsUser ({uid})")
            check(sc.get("readOnlyRootFilesystem") is True, f"{who} has a read-only root file system")
            check(sc.get("allowPrivilegeEscalation") is False, f"{who} cannot escalate privileges")
            check("ALL" in (dig(sc, "capabilities", "drop", default=[]) or []), f"{who} drops all capabilities")

            env: dict[str, str] = {}
            for ef in c.get("envFrom", []):
                sname = dig(ef, "secretRef", "name")
                if sname:
                    if check(sname in secrets, f"{who} takes its environment from Secret {sname}, which exists"):
                        env.update(secret_env(secrets[sname]))
            for e in c.get("env", []):
                if "value" in e:
                    env[e["name"]] = str(e["value"])
            check("DSN" in env, f"{who} gets DSN from its Secret")

            args = (c.get("command") or [])[1:] + (c.get("args") or []) if c.get("command") else c.get("args") or []
            if args[:2] == ["migrate", "sql"]:
                check("--yes" in args or "-y" in args, f"{who} migrates without asking (--yes)")
                dsn_arg = [a for a in args[2:] if not a.startswith("-")]
                check("--read-from-env" in args or "-e" in args or dsn_arg == ["$(DSN)"] or not dsn_arg,
                      f"{who} reads the DSN from the Secret's environment")
                check(wl.get("kind") == "Job", f"{who} is a Job")
                check(str(env.get("DSN", "")).startswith("postgres"), f"{who} migrates PostgreSQL")
                continue
            if not args or args[0] != "serve":
                check(False, f"{who} runs `serve` or `migrate sql`", str(args))
                continue

            cfg_path = arg_value(args, "--config") or arg_value(args, "-c")
            if not check(cfg_path is not None, f"{who} passes --config"):
                continue
            cfg_text = mounted_file(cfg_path, c, volumes, configmaps)
            if not check(cfg_text is not None, f"{who}: {cfg_path} comes from a mounted ConfigMap"):
                continue
            cfg = yaml.safe_load(cfg_text) or {}
            serving.append((wl, meta, spec, cfg))

            key = (cfg_path, cfg_text)
            if key not in checked_configs:
                checked_configs.add(key)
                pc.config_check(f"{who} {cfg_path}", cfg_text, env)
            for repo in dig(cfg, "access_rules", "repositories", default=[]) or []:
                rpath = repo[len("file://"):] if repo.startswith("file://") else repo
                rules_text = mounted_file(rpath, c, volumes, configmaps)
                if check(rules_text is not None, f"{who}: rules {repo} come from a mounted ConfigMap"):
                    pc.rules_validate(f"{who} {rpath}", cfg_text, rules_text, env)
                    rules = check_rules_shape(f"{who} {rpath}", rules_text)
                    for r in rules:
                        up = dig(r, "upstream", "url", default="")
                        m = re.fullmatch(r"https?://(127\.0\.0\.1|localhost|\[::1\]):(\d+)/?.*", up)
                        if m:  # a sidecar upstream: a container of the same Pod must listen there
                            others = [p["containerPort"] for o in spec.get("containers", []) if o is not c
                                      for p in o.get("ports", [])]
                            check(int(m.group(2)) in others,
                                  f"{who}: rule {r.get('id')} forwards to {up}, a port of another container")

            # Probes on the health paths of the public listener.
            public_port = dig(cfg, "serve", "public", "port", default=pc.ref["serve"]["public"]["port"])
            ports = container_ports({"containers": [c]})
            for probe, path in (("livenessProbe", "/health/alive"), ("readinessProbe", "/health/ready")):
                hg = dig(c, probe, "httpGet", default={}) or {}
                port = ports.get(str(hg.get("port")))
                check(hg.get("path") == path and port == public_port,
                      f"{who} has a {probe} on {path} of the public port {public_port}",
                      f"{hg.get('path')} on {hg.get('port')} ({port})")
            proxy_port = dig(cfg, "serve", "proxy", "port", default=pc.ref["serve"]["proxy"]["port"])
            check(proxy_port in ports.values(), f"{who} declares the proxy port {proxy_port}")

            # Graceful shutdown.
            grace = spec.get("terminationGracePeriodSeconds", 30)
            shutdown = go_duration(dig(cfg, "serve", "shutdown_timeout",
                                       default=pc.ref["serve"]["shutdown_timeout"]))
            sleep = presleep(c)
            check(sleep > 0, f"{who} sleeps in preStop ({sleep:g} s) so that endpoints update before SIGTERM")
            check(grace > sleep + shutdown,
                  f"{who}: terminationGracePeriodSeconds {grace} > preStop {sleep:g} s + shutdown_timeout "
                  f"{shutdown:g} s")

            # SQLite must live in a writable volume when the root file system is read-only.
            dsn = env.get("DSN", "")
            if dsn.startswith("sqlite://"):
                db = re.sub(r"^sqlite://", "", dsn).split("?")[0]
                check(writable_dir(os.path.dirname(db), c, volumes),
                      f"{who}: the SQLite database {db} is in a writable volume")
            for s in ("SECRETS_COOKIE", "SECRETS_DEFAULT"):
                check(s in env or dig(cfg, "secrets", s.split("_")[1].lower()),
                      f"{who} gets {s} (shared across restarts and replicas)")

            # Resources: argon2 hashes run one per CPU of the limit, each hashers.argon2.memory.
            res = c.get("resources", {})
            cpu_limit = dig(res, "limits", "cpu")
            mem_limit = dig(res, "limits", "memory")
            check(bool(dig(res, "requests", "cpu")) and bool(dig(res, "requests", "memory")),
                  f"{who} requests CPU and memory")
            if check(cpu_limit is not None and mem_limit is not None,
                     f"{who} has CPU and memory limits (the CPU limit bounds concurrent argon2 hashes)"):
                algo = dig(cfg, "hashers", "algorithm", default=pc.ref["hashers"]["algorithm"])
                per_hash = bytesize(dig(cfg, "hashers", "argon2", "memory",
                                        default=pc.ref["hashers"]["argon2"]["memory"])) if algo == "argon2" else 0
                hashes = -(-quantity_cpu(cpu_limit) // 1)
                need = 40 * 2**20 + hashes * per_hash
                check(quantity_bytes(mem_limit) >= need,
                      f"{who}: memory limit {mem_limit} holds 40 MiB + {hashes:g} concurrent hash(es) x "
                      f"{per_hash / 2**20:g} MiB = {need / 2**20:g} MiB")
                check(quantity_bytes(dig(res, "requests", "memory")) >= 36 * 2**20,
                      f"{who}: memory request covers the ~36 MiB RSS under load")

    check(len(serving) > 0, f"{name}: at least one Portcullis container serves")

    # Services, PDB, HPA.
    pods = [(wl, meta, spec) for wl, meta, spec in pod_specs(docs) if wl.get("kind") != "Job"]
    for svc in (d for d in docs if d.get("kind") == "Service"):
        if dig(svc, "spec", "type") == "ExternalName":
            check(bool(dig(svc, "spec", "externalName")), f"{name}: {ident(svc)} names an external host")
            continue
        sel = dig(svc, "spec", "selector", default={}) or {}
        targets = [(wl, spec) for wl, meta, spec in pods
                   if sel and all(meta.get("labels", {}).get(k) == v for k, v in sel.items())]
        if check(bool(targets), f"{name}: {ident(svc)} selects a workload's Pods"):
            for port in dig(svc, "spec", "ports", default=[]):
                tp = str(port.get("targetPort", port["port"]))
                check(all(tp in container_ports(spec) for _, spec in targets),
                      f"{name}: {ident(svc)} port {port['port']} targets a declared container port ({tp})")
    proxy_services = [s for s in docs if s.get("kind") == "Service" and any(
        str(p.get("targetPort")) == "proxy" or p.get("targetPort") == 4455 for p in dig(s, "spec", "ports", default=[]))]
    check(bool(proxy_services), f"{name}: a Service points at the edge proxy port")
    for wl, meta, spec, cfg in serving:
        admin_host = dig(cfg, "serve", "admin", "host", default="")
        admin_port = dig(cfg, "serve", "admin", "port", default=pc.ref["serve"]["admin"]["port"])
        exposed = [s for s in docs if s.get("kind") == "Service" and dig(s, "spec", "type", default="ClusterIP")
                   in ("NodePort", "LoadBalancer") and any(
                       container_ports(spec).get(str(p.get("targetPort"))) == admin_port
                       for p in dig(s, "spec", "ports", default=[]))]
        check(not exposed, f"{name}: no NodePort/LoadBalancer Service exposes the admin port "
                           f"({'loopback only' if admin_host in ('127.0.0.1', 'localhost', '::1') else admin_port})")
    for pdb in (d for d in docs if d.get("kind") == "PodDisruptionBudget"):
        sel = dig(pdb, "spec", "selector", "matchLabels", default={})
        match = [wl for wl, meta, _ in pods if all(meta.get("labels", {}).get(k) == v for k, v in sel.items())]
        check(bool(match), f"{name}: {ident(pdb)} selects {', '.join(map(ident, match)) or 'nothing'}")
        for wl in match:
            reps = dig(wl, "spec", "replicas", default=1)
            mu, ma = dig(pdb, "spec", "maxUnavailable"), dig(pdb, "spec", "minAvailable")
            check((mu is not None and int(mu) >= 1) or (ma is not None and int(ma) < reps),
                  f"{name}: {ident(pdb)} lets a drain proceed with {reps} replicas")
    for hpa in (d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"):
        ref = dig(hpa, "spec", "scaleTargetRef", default={})
        target = [wl for wl, _, _ in pods if wl["kind"] == ref.get("kind") and wl["metadata"]["name"] == ref.get("name")]
        if check(bool(target), f"{name}: {ident(hpa)} scales {ref.get('kind')}/{ref.get('name')}, which exists"):
            wl = target[0]
            check(dig(hpa, "spec", "minReplicas", default=1) <= dig(wl, "spec", "replicas", default=1)
                  <= dig(hpa, "spec", "maxReplicas"),
                  f"{name}: {ident(wl)} replicas lie within the HPA's range")
            cpu_metric = [m for m in dig(hpa, "spec", "metrics", default=[])
                          if dig(m, "resource", "name") == "cpu"]
            all_requests = all(dig(c, "resources", "requests", "cpu") for c in
                               dig(wl, "spec", "template", "spec", "containers", default=[]))
            check(not cpu_metric or all_requests, f"{name}: every container of {ident(wl)} requests CPU "
                                                  f"(the HPA's utilization is relative to it)")


# ---- compose ----------------------------------------------------------------------------------------------


def check_compose(root: Path, pc: Portcullis, docker_compose: str | None) -> None:
    print("deploy/compose.yaml")
    path = root / "deploy/compose.yaml"
    if docker_compose:
        p = subprocess.run([docker_compose, "-f", str(path), "config", "-q"], capture_output=True, text=True)
        check(p.returncode == 0, "`docker-compose config` accepts it", p.stderr.strip())
    compose = yaml.safe_load(path.read_text())
    services = compose.get("services", {})
    for s in ("portcullis", "migrate", "postgres", "redis", "mailpit", "whoami"):
        check(s in services, f"service {s} is defined")
    pcs = services.get("portcullis", {})
    mig = services.get("migrate", {})
    for svc, label in ((pcs, "portcullis"), (mig, "migrate")):
        check(dig(svc, "build", "dockerfile") == "deploy/Dockerfile"
              and (path.parent / dig(svc, "build", "context", default=".")).resolve() == root.resolve(),
              f"{label} is built from deploy/Dockerfile with the repository root as context")
        check(svc.get("read_only") is True, f"{label} runs with a read-only root file system")
    env = {k: str(v) for k, v in (pcs.get("environment") or {}).items()}
    check(env.get("DSN", "").startswith("postgres://") and "@postgres:" in env.get("DSN", ""),
          "portcullis uses the postgres service (DSN)")
    check(env.get("CACHE_REDIS_URL", "").startswith("redis://redis:"), "portcullis uses the redis service")
    check(env.get("COURIER_SMTP_CONNECTION_URI") == "smtp://mailpit:1025/?disable_starttls=true",
          "portcullis sends mail to mailpit (COURIER_SMTP_CONNECTION_URI)")
    check(mig.get("environment") == pcs.get("environment"), "migrate and portcullis share their environment")
    check(mig.get("command", [])[:2] == ["migrate", "sql"] and "--yes" in mig.get("command", []),
          "migrate runs `portcullis migrate sql --yes`")
    check(dig(mig, "depends_on", "postgres", "condition") == "service_healthy", "migrate waits for postgres")
    check(dig(pcs, "depends_on", "migrate", "condition") == "service_completed_successfully",
          "portcullis starts after the migration succeeded")
    cmd = pcs.get("command", [])
    check(cmd[:1] == ["serve"], "portcullis runs serve")

    cfg_path = arg_value(cmd, "--config")
    mounts = {}
    for v in pcs.get("volumes", []):
        src, dst = v.split(":")[:2]
        mounts[dst.rstrip("/")] = (path.parent / src).resolve()
    host_cfg = None
    if cfg_path and os.path.dirname(cfg_path) in mounts:
        host_cfg = mounts[os.path.dirname(cfg_path)] / os.path.basename(cfg_path)
    if not check(host_cfg is not None and host_cfg.is_file(), f"the config {cfg_path} is mounted from deploy/compose/"):
        return
    cfg_text = host_cfg.read_text()
    cfg = yaml.safe_load(cfg_text) or {}
    pc.config_check("deploy/compose/portcullis.yaml", cfg_text, env)
    shutdown = go_duration(dig(cfg, "serve", "shutdown_timeout", default=pc.ref["serve"]["shutdown_timeout"]))
    grace = go_duration(str(pcs.get("stop_grace_period", "10s")))
    check(grace > shutdown, f"stop_grace_period {grace:g} s > shutdown_timeout {shutdown:g} s")
    for repo in dig(cfg, "access_rules", "repositories", default=[]) or []:
        rpath = repo[len("file://"):] if repo.startswith("file://") else repo
        host_rules = mounts.get(os.path.dirname(rpath))
        if check(host_rules is not None and (host_rules / os.path.basename(rpath)).is_file(),
                 f"the rules {repo} are mounted from deploy/compose/"):
            rules_text = (host_rules / os.path.basename(rpath)).read_text()
            pc.rules_validate("deploy/compose/rules.yaml", cfg_text, rules_text, env)
            for r in check_rules_shape("deploy/compose/rules.yaml", rules_text):
                host = re.sub(r"^https?://([^:/]+).*$", r"\1", dig(r, "upstream", "url", default=""))
                check(host in services, f"rule {r.get('id')} forwards to the compose service {host}")
    published = [str(p) for p in pcs.get("ports", [])]
    check(all(p.startswith("127.0.0.1:") for p in published), "portcullis publishes its ports on loopback only")


# ---- self-tests -------------------------------------------------------------------------------------------


def self_tests(root: Path, pc: Portcullis, docker_compose: str | None) -> None:
    print("self-tests: each validator rejects a broken input")
    dep = next(d for d in load_docs(root / "deploy/kubernetes/shared-edge/deployment.yaml") if d["kind"] == "Deployment")
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    check(schema_errors(bad, versions()[-1]) is not None, "kubernetes-validate rejects an unknown field (strict)")
    bad = copy.deepcopy(dep)
    bad["spec"]["replicas"] = "three"
    check(schema_errors(bad, versions()[-1]) is not None, "kubernetes-validate rejects a wrong type")
    check(schema_errors(dep, "1.28") is not None, "kubernetes-validate rejects the sleep preStop action on 1.28")
    rc, _ = pc.run(["config", "check", str(pc.write("bad.yaml", "serve: {public: {prot: 1}}\n"))],
                   {"DSN": "sqlite:///tmp/x.db"})
    check(rc != 0, "`portcullis config check` rejects an unknown key")
    rc, _ = pc.run(["rules", "validate", str(pc.write("bad-rules.yaml", "- id: x\n  match: {url: '<['}\n"))],
                   {"DSN": "sqlite:///tmp/x.db"})
    check(rc != 0, "`portcullis rules validate` rejects a broken rule")
    if docker_compose:
        badc = pc.write("compose.yaml", "services:\n  x:\n    image: busybox\n    restart: sometimes\n    bogus: 1\n")
        p = subprocess.run([docker_compose, "-f", str(badc), "config", "-q"], capture_output=True, text=True)
        check(p.returncode != 0, "`docker-compose config` rejects an unknown service key")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--bin", type=Path, required=True)
    ap.add_argument("--kubectl")
    ap.add_argument("--docker-compose")
    a = ap.parse_args()
    reference = yaml.safe_load((a.root / "deploy/config.reference.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        pc = Portcullis(a.bin.resolve(), reference, Path(tmp))
        self_tests(a.root, pc, a.docker_compose)
        kdirs = sorted(p.parent for p in (a.root / "deploy/kubernetes").glob("*/kustomization.yaml"))
        check(len(kdirs) >= 2, f"deploy/kubernetes has the kustomizations ({', '.join(p.name for p in kdirs)})")
        for kdir in kdirs:
            check_kustomization(kdir, pc, a.kubectl)
        check_compose(a.root, pc, a.docker_compose)
    print(f"manifests: {PASSED} passed, {len(FAILURES)} failed")
    for f in FAILURES:
        print(f"  failed: {f}", file=sys.stderr)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
