"""Offline checks of the Helm chart deploy/helm/portcullis with the real helm (see tests/deploy/validate.sh).

Usage: check_helm.py --root REPO --bin PORTCULLIS --helm PATH

For the chart's default values and every value file in deploy/helm/examples/:
  * `helm lint --strict` passes and `helm template` renders it (hooks included);
  * every rendered document validates against the Kubernetes JSON schemas of every version from MIN_K8S on
    (kubernetes-validate, strict), and the rendered set passes the same consistency checks as the
    kustomizations (check_manifests.check_documents: probes, grace period, security context, resources, Secret,
    Services, PDB, HPA, migration Job, `portcullis config check` and `rules validate` with the binary);
  * chart conventions: app.kubernetes.io/* labels on every object, a checksum/config annotation on the Pod
    template that changes with the config, the migration Job a pre-install,pre-upgrade hook that runs after the
    Secret (a hook too), the Job's Pods selected by no Service, PDB or NetworkPolicy, and NOTES.txt renders
    (`helm install --dry-run=client`, no cluster) naming the proxy's Service.
The defaults must mirror deploy/kubernetes/shared-edge and examples/sidecar.yaml deploy/kubernetes/sidecar: the
same config (up to keys at their default) and rules, the same kinds of objects, Portcullis container (ports,
probes, resources, preStop, security context), Pod security context, grace period, Secret keys and
NetworkPolicy ports. With secret.existingSecret no Secret is rendered and both workloads read the named one.
Self-tests first show that broken values fail (the schema, the template guards, the consistency checks), so
that a pass means something.

Prints one line per check and exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_manifests as cm  # noqa: E402  (the checks shared with the kustomizations)
from check_manifests import check, dig, ident  # noqa: E402

CHART = "deploy/helm/portcullis"
NAMESPACE = "portcullis"
# (label, release name, value files relative to the repository, the kustomization it mirrors or None)
VALUE_SETS = [
    ("defaults", "portcullis", [], "deploy/kubernetes/shared-edge"),
    ("examples/sidecar.yaml", "myapp", ["deploy/helm/examples/sidecar.yaml"], "deploy/kubernetes/sidecar"),
    ("examples/edge-postgres.yaml", "auth", ["deploy/helm/examples/edge-postgres.yaml"], None),
]


class Helm:
    def __init__(self, binary: str, root: Path):
        self.bin, self.root = binary, root

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin, *args], capture_output=True, text=True, cwd=self.root)

    def lint(self, values: list[str], chart: str = CHART) -> subprocess.CompletedProcess:
        return self.run("lint", "--strict", chart, *[a for v in values for a in ("-f", v)])

    def template(self, release: str, values: list[str], sets: list[str] = (), chart: str = CHART,
                 extra: list[str] = ()) -> tuple[int, list[dict], str]:
        args = ["template", release, chart, "--namespace", NAMESPACE, *extra]
        args += [a for v in values for a in ("-f", v)] + [a for s in sets for a in ("--set", s)]
        p = self.run(*args)
        docs = [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else []
        return p.returncode, docs, p.stderr.strip()


def first_line(s: str) -> str:
    return next((ln for ln in s.splitlines() if ln.strip()), "")


def brief(s: str) -> str:
    """helm's error output on one line."""
    return " ".join(ln.strip() for ln in s.splitlines() if ln.strip() and not ln.startswith("Use --debug"))


def portcullis_containers(docs: list[dict]) -> list[tuple[dict, dict, dict]]:
    """(workload, pod spec, container) for every Portcullis container that serves."""
    return [(wl, spec, c) for wl, _, spec in cm.pod_specs(docs) for c in spec.get("containers", [])
            if cm.is_portcullis(c) and (c.get("args") or [])[:1] == ["serve"]]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def hook(doc: dict) -> tuple[set[str], int]:
    ann = dig(doc, "metadata", "annotations", default={}) or {}
    events = {e.strip() for e in ann.get("helm.sh/hook", "").split(",") if e.strip()}
    return events, int(ann.get("helm.sh/hook-weight", "0"))


def strip_defaults(cfg: object, ref: object) -> object:
    """The config without the keys that hold their default (deploy/config.reference.yaml)."""
    if not isinstance(cfg, dict) or not isinstance(ref, dict):
        return cfg
    out = {}
    for k, v in cfg.items():
        if k in ref and v == ref[k]:
            continue
        v = strip_defaults(v, ref.get(k)) if k in ref else v
        if v != {}:
            out[k] = v
    return out


def configmap_files(docs: list[dict]) -> tuple[dict, list]:
    """The Portcullis config and rules that the (one) ConfigMap of a layout carries."""
    (cmap,) = by_kind(docs, "ConfigMap")
    data = cmap.get("data", {})
    return yaml.safe_load(data.get("portcullis.yaml", "")) or {}, yaml.safe_load(data.get("rules.yaml", "")) or []


# ---- checks of one rendering ------------------------------------------------------------------------------


def check_conventions(label: str, release: str, docs: list[dict], h: Helm, values: list[str]) -> None:
    for d in docs:
        labels = dig(d, "metadata", "labels", default={}) or {}
        check(labels.get("app.kubernetes.io/instance") == release and labels.get("app.kubernetes.io/managed-by")
              == "Helm" and "app.kubernetes.io/name" in labels and "helm.sh/chart" in labels,
              f"{label}: {ident(d)} carries the standard app.kubernetes.io/* and helm.sh/chart labels")

    deps = by_kind(docs, "Deployment")
    if not check(len(deps) == 1, f"{label}: one Deployment"):
        return
    checksum = dig(deps[0], "spec", "template", "metadata", "annotations", "checksum/config")
    check(bool(checksum), f"{label}: the Pod template has a checksum/config annotation")
    level = dig(configmap_files(docs)[0], "log", "level", default="info")
    _, docs2, _ = h.template(release, values, [f"config.log.level={'debug' if level != 'debug' else 'info'}"])
    changed = [dig(d, "spec", "template", "metadata", "annotations", "checksum/config")
               for d in by_kind(docs2, "Deployment")]
    check(bool(changed) and changed[0] != checksum, f"{label}: a config change changes checksum/config (Pods roll)")

    secrets = by_kind(docs, "Secret")
    for job in by_kind(docs, "Job"):
        events, weight = hook(job)
        check(events == {"pre-install", "pre-upgrade"},
              f"{label}: {ident(job)} is a pre-install,pre-upgrade hook", str(sorted(events)))
        for s in secrets:
            s_events, s_weight = hook(s)
            check(events <= s_events and s_weight < weight,
                  f"{label}: {ident(s)} is created by the same hooks before {ident(job)} "
                  f"(weight {s_weight} < {weight})")
        pod_labels = dig(job, "spec", "template", "metadata", "labels", default={}) or {}
        for d in docs:
            sel = (dig(d, "spec", "selector", "matchLabels") if d.get("kind") == "PodDisruptionBudget"
                   else dig(d, "spec", "podSelector", "matchLabels") if d.get("kind") == "NetworkPolicy"
                   else dig(d, "spec", "selector") if d.get("kind") == "Service" else None)
            if sel:
                check(not all(pod_labels.get(k) == v for k, v in sel.items()),
                      f"{label}: {ident(d)} does not select the migration Pods")


def check_mirror(label: str, docs: list[dict], kdir: Path, ref: dict) -> None:
    """The rendering expresses the kustomization: same config and rules, kinds, container and Pod settings."""
    kdocs = [d for f in sorted(kdir.glob("*.yaml")) if f.name != "kustomization.yaml" for d in cm.load_docs(f)]
    what = f"{label} mirrors {kdir.name}"
    (cfg, rules), (kcfg, krules) = configmap_files(docs), configmap_files(kdocs)
    check(strip_defaults(cfg, ref) == strip_defaults(kcfg, ref), f"{what}: the same config (up to defaults)",
          f"{strip_defaults(cfg, ref)} != {strip_defaults(kcfg, ref)}")
    check(rules == krules, f"{what}: the same rules")
    kinds, kkinds = sorted(d["kind"] for d in docs), sorted(d["kind"] for d in kdocs)
    check(kinds == kkinds, f"{what}: the same kinds of objects", f"{kinds} != {kkinds}")

    pcs, kpcs = portcullis_containers(docs), portcullis_containers(kdocs)
    if not check(len(pcs) == len(kpcs) == 1, f"{what}: one serving Portcullis container each"):
        return
    (wl, spec, c), (kwl, kspec, kc) = pcs[0], kpcs[0]
    for key in ("args", "ports", "resources", "livenessProbe", "readinessProbe", "lifecycle", "securityContext"):
        check(c.get(key) == kc.get(key), f"{what}: the Portcullis container's {key}", f"{c.get(key)} != {kc.get(key)}")
    check([m["mountPath"] for m in c.get("volumeMounts", [])] == [m["mountPath"] for m in kc.get("volumeMounts", [])],
          f"{what}: the Portcullis container's mount paths")
    for key in ("securityContext", "terminationGracePeriodSeconds", "automountServiceAccountToken",
                "enableServiceLinks"):
        check(spec.get(key) == kspec.get(key), f"{what}: the Pod's {key}", f"{spec.get(key)} != {kspec.get(key)}")
    spread = [t["topologyKey"] for t in spec.get("topologySpreadConstraints", [])]
    check(spread == [t["topologyKey"] for t in kspec.get("topologySpreadConstraints", [])],
          f"{what}: the Pods spread over {spread or 'nothing'}")
    others = [o for o in spec.get("containers", []) if o is not c]
    kothers = [o for o in kspec.get("containers", []) if o is not kc]
    check(others == kothers, f"{what}: the other containers of the Pod (the app)")
    for key in ("replicas", "strategy"):
        check(dig(wl, "spec", key) == dig(kwl, "spec", key), f"{what}: the Deployment's {key}")
    keys = sorted(k for s in by_kind(docs, "Secret") for k in cm.secret_env(s))
    kkeys = sorted(k for s in by_kind(kdocs, "Secret") for k in cm.secret_env(s))
    check(keys == kkeys, f"{what}: the Secret's keys ({', '.join(keys)})", f"{keys} != {kkeys}")

    def np_ports(ds: list[dict]) -> list[list[str]]:
        return [sorted(str(p["port"]) for p in rule.get("ports", []))
                for n in by_kind(ds, "NetworkPolicy") for rule in dig(n, "spec", "ingress", default=[])]
    check(np_ports(docs) == np_ports(kdocs), f"{what}: the NetworkPolicy's ports {np_ports(docs)}")
    spec_keys = {"PodDisruptionBudget": ("maxUnavailable", "minAvailable"),
                 "HorizontalPodAutoscaler": ("minReplicas", "maxReplicas", "metrics", "behavior"),
                 "Job": ("backoffLimit", "activeDeadlineSeconds")}
    for kind, keys in spec_keys.items():
        a, b = by_kind(docs, kind), by_kind(kdocs, kind)
        if a and b:
            for key in keys:
                check(dig(a[0], "spec", key) == dig(b[0], "spec", key), f"{what}: the {kind}'s {key}")
            if kind == "Job":
                (jc,) = a[0]["spec"]["template"]["spec"]["containers"]
                (kjc,) = b[0]["spec"]["template"]["spec"]["containers"]
                for key in ("args", "resources", "securityContext"):
                    check(jc.get(key) == kjc.get(key), f"{what}: the migration container's {key}")


# ---- self-tests -------------------------------------------------------------------------------------------


def self_tests(h: Helm, pc: cm.Portcullis, root: Path, tmp: Path) -> None:
    print("self-tests: broken charts and values fail")
    broken = tmp / "broken-chart"
    shutil.copytree(root / CHART, broken)
    with open(broken / "templates/configmap.yaml", "a") as f:
        f.write("  oops: {{ .Values.nothing.here }}\n")
    check(h.lint([], chart=str(broken)).returncode != 0, "`helm lint --strict` rejects a template error")

    def rejected(sets: list[str], what: str, extra: list[str] = ()) -> None:
        rc, _, err = h.template("portcullis", [], sets, extra=extra)
        check(rc != 0, f"`helm template` rejects {what}", "" if rc else "it rendered")
        if rc:
            print(f"        ({brief(err)[:160]})")

    rejected(["mode=bogus"], "mode=bogus (values.schema.json)")
    rejected(["replicaz=3"], "an unknown top-level value (values.schema.json)")
    rejected(["config.serve.shutdown_timeout=fifteen"], "a shutdown_timeout that is no Go duration (schema)")
    rejected(["secret.env.SECRETS_COOKIE=short"], "a cookie secret under 16 characters (template guard)")
    rejected(["secret.env.DSN="], "a missing DSN (template guard)")
    rejected(["mode=sidecar"], "sidecar mode without an app container (template guard)")
    rejected([], "Kubernetes 1.29 (kubeVersion >=1.30: the preStop sleep action)", extra=["--kube-version", "1.29.0"])

    def fails(sets: list[str], needle: str, what: str, values: list[str] = ()) -> None:
        rc, docs, err = h.template("portcullis", list(values), sets)
        if not check(rc == 0, f"the consistency checks catch {what}: it renders", err):
            return
        with cm.recording() as failed:
            cm.check_documents("broken", docs, pc)
        hit = [f for f in failed if needle in f]
        check(bool(hit), f"the consistency checks catch {what}", f"failed only: {failed}")
        if hit:
            print(f"        ({hit[0][:150]})")

    fails(["config.serve.shutdown_timeout=30s"], "terminationGracePeriodSeconds",
          "shutdown_timeout 30s with a grace period of 30 s")
    fails(["preStopSleepSeconds=0"], "sleeps in preStop", "no preStop sleep")
    fails(["config.serve.proxy.prot=1"], "config check", "an unknown config key (portcullis config check)")
    rules = yaml.safe_load((root / CHART / "values.yaml").read_text())["rules"]
    rules[0]["match"]["url"] = "<https?>://<[^/]+>/<[>"
    (tmp / "broken-rules.yaml").write_text(yaml.safe_dump({"rules": rules}))
    fails([], "rules validate", "a broken rule (portcullis rules validate)", [str(tmp / "broken-rules.yaml")])
    fails(["resources.limits.cpu=4"], "memory limit", "a CPU limit of 4 with a memory limit for 2 hashes")
    fails(["securityContext.readOnlyRootFilesystem=false"], "read-only root", "a writable root file system")
    fails(["secret.env.DSN=sqlite:///var/db/x.sqlite", "migration.enabled=false"], "writable volume",
          "a SQLite database outside the data volume")


# ---- main -------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--bin", type=Path, required=True)
    ap.add_argument("--helm", required=True)
    a = ap.parse_args()
    root = a.root.resolve()
    reference = yaml.safe_load((root / "deploy/config.reference.yaml").read_text())
    h = Helm(a.helm, root)
    print(f"{CHART} with {first_line(h.run('version', '--short').stdout)}")
    with tempfile.TemporaryDirectory() as tmp:
        pc = cm.Portcullis(a.bin.resolve(), reference, Path(tmp))
        self_tests(h, pc, root, Path(tmp))
        examples = sorted(str(p.relative_to(root)) for p in (root / "deploy/helm/examples").glob("*.yaml"))
        covered = sorted(v for _, _, vs, _ in VALUE_SETS for v in vs)
        check(examples == covered, f"every value file in deploy/helm/examples is checked ({len(examples)})",
              f"{examples} != {covered}")
        rendered: dict[str, list[dict]] = {}
        for label, release, values, mirrors in VALUE_SETS:
            print(f"{CHART} with {label} (release {release})")
            p = h.lint(values)
            check(p.returncode == 0, f"{label}: `helm lint --strict` passes",
                  (p.stdout + p.stderr).strip().replace("\n", " | "))
            rc, docs, err = h.template(release, values)
            if not check(rc == 0 and bool(docs), f"{label}: `helm template` renders {len(docs)} objects", err):
                continue
            rendered[label] = docs
            cm.check_schemas(f"{label}:", docs)
            cm.check_documents(label, docs, pc)
            check_conventions(label, release, docs, h, values)
            p = h.run("install", release, CHART, "--dry-run=client", "--namespace", NAMESPACE,
                      *[a for v in values for a in ("-f", v)])
            notes = p.stdout.split("NOTES:", 1)[-1] if "NOTES:" in p.stdout else ""
            proxy_svc = [d["metadata"]["name"] for d in by_kind(docs, "Service")
                         if any(pt.get("targetPort") == "proxy" for pt in dig(d, "spec", "ports", default=[]))]
            check(p.returncode == 0 and proxy_svc and f"svc/{proxy_svc[0]} " in notes,
                  f"{label}: `helm install --dry-run=client` prints NOTES.txt with the proxy's Service",
                  brief(p.stderr) or notes.strip()[:200])
            if mirrors:
                check_mirror(label, docs, root / mirrors, reference)

        print(f"{CHART} with secret.existingSecret")
        rc, docs, err = h.template("portcullis", [], ["secret.existingSecret=portcullis-env"])
        if check(rc == 0, "existingSecret: `helm template` renders it", err):
            check(not by_kind(docs, "Secret"), "existingSecret: the chart renders no Secret")
            refs = {dig(ef, "secretRef", "name") for _, _, spec in cm.pod_specs(docs)
                    for c in spec.get("containers", []) for ef in c.get("envFrom", [])}
            check(refs == {"portcullis-env"}, f"existingSecret: the Deployment and the Job read it ({refs})")
            check(all(not k.startswith("checksum/secret") for d in by_kind(docs, "Deployment")
                      for k in dig(d, "spec", "template", "metadata", "annotations", default={})),
                  "existingSecret: no checksum of a Secret the chart does not render")
    print(f"helm: {cm.PASSED} passed, {len(cm.FAILURES)} failed")
    for f in cm.FAILURES:
        print(f"  failed: {f}", file=sys.stderr)
    return 1 if cm.FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
