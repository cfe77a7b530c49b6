#!/usr/bin/env bash
# Installs the custom resource definitions a model platform expects to find, read from their Go
# modules at pinned versions in the module cache (nothing is copied into this repository):
#   - Gateway API, standard channel (CRDs only; its ValidatingAdmissionPolicy files are skipped)
#   - Prometheus Operator: ServiceMonitor, PodMonitor, PrometheusRule
#
#   cluster/platform-crds.sh apply | delete
set -euo pipefail

GATEWAY_API_VERSION=v1.4.1
PROMETHEUS_OPERATOR_VERSION=v0.85.0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export KUBECONFIG=${KUBECONFIG:-$ROOT/.cluster/kubeconfig}

die() { echo "modeldeploy cluster: $*" >&2; exit 1; }

module_dir() {
  local dir
  dir=$(go mod download -json "$1@$2" 2>/dev/null | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  [[ -n $dir && -d $dir ]] || die "cannot download $1@$2 from the Go module proxy ($(go env GOPROXY))"
  echo "$dir"
}

crd_files() {
  local gw prom
  gw=$(module_dir sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")
  prom=$(module_dir github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")
  find "$gw/config/crd/standard" -name 'gateway.networking.k8s.io_*.yaml' | sort
  for kind in servicemonitors podmonitors prometheusrules; do
    echo "$prom/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml"
  done
}

mapfile -t files < <(crd_files)
args=()
for f in "${files[@]}"; do args+=(-f "$f"); done

case ${1:-apply} in
  apply)
    echo "installing Gateway API $GATEWAY_API_VERSION and Prometheus Operator $PROMETHEUS_OPERATOR_VERSION CRDs"
    # Server-side apply: these CRDs are too large for the last-applied annotation.
    kubectl apply --server-side --force-conflicts "${args[@]}" >/dev/null
    kubectl wait --for=condition=Established --timeout=60s "${args[@]}" >/dev/null
    ;;
  delete)
    kubectl delete --ignore-not-found --wait "${args[@]}" >/dev/null
    ;;
  *) die "usage: cluster/platform-crds.sh apply|delete" ;;
esac
