#!/usr/bin/env bash
# The tools test/deploy/k8s.spec.ts runs (docs/operations.md, "Kubernetes"): kubectl for
# `kubectl kustomize`, promtool for `promtool check rules`. kubernetes-validate, the third, is
# installed by the test itself into .kernelfleet/deploy-tools/ (it needs python3 -m venv and PyPI).
# .ci/run sources this file and runs the functions as steps; `bash .ci/deploy-tools.sh` runs both.

# Debian's `prometheus` package ships promtool. Its service is not started where policy-rc.d
# forbids it (containers, CI); elsewhere the package starts a Prometheus on :9090.
ensure_promtool() {
  if ! command -v promtool >/dev/null; then
    apt-get install -y --no-install-recommends prometheus \
      || { apt-get update && apt-get install -y --no-install-recommends prometheus; } \
      || return
  fi
  promtool --version
}

# kubectl is not installed here: Debian's kubernetes-client (1.20) is too old for k8s/; the
# machines come with kubectl 1.32. Any kubectl from 1.27 on (kustomize v5) renders k8s/ alike.
ensure_kubectl() {
  command -v kubectl >/dev/null || { echo "kubectl is not on the PATH: install kubectl 1.27 or later" >&2; return 1; }
  kubectl version --client || return
  kubectl kustomize k8s/overlays/example >/dev/null || { echo "kubectl kustomize cannot render k8s/overlays/example" >&2; return 1; }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  export DEBIAN_FRONTEND=noninteractive
  ensure_promtool
  ensure_kubectl
fi
