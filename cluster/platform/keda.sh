#!/usr/bin/env bash
# KEDA, which scales a ModelDeployment's version to zero pods when it is idle and back when
# traffic comes (`spec.autoscaling.minReplicas: 0`): its CRDs (from the KEDA module in the Go
# module cache; cluster/modules/keda) and its operator as a host process, like the Prometheus
# Operator. Optional, and not started by cluster/platform/up.sh: with KEDA installed, the
# modeldeploy operator writes ScaledObjects instead of HorizontalPodAutoscalers for those
# versions, which changes what a cluster without it is tested for. The scale-to-zero e2e test
# starts it and stops it.
#
# The operator alone moves a version between zero and one pod (it polls the triggers itself).
# From one pod up, KEDA's HorizontalPodAutoscaler reads the external metrics API that KEDA's
# metrics adapter serves; the adapter is built (cluster/build.sh) but not run here.
#
#   cluster/platform/keda.sh up | down
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

KEDA_NAMESPACE=keda
CERT_DIR=$PLATFORM_DIR/keda-certs

crd_dir() {
  local dir
  dir=$(cd "$ROOT/cluster/modules/keda" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)
  [[ -d $dir/config/crd/bases ]] || die "no KEDA module in the module cache (cluster/build.sh all downloads it)"
  echo "$dir/config/crd/bases"
}

# The operator's gRPC metrics service (for the adapter) serves TLS from ca.crt, tls.crt and
# tls.key in --cert-dir, and the operator stops if they are missing: a self-signed set, made once.
certificates() {
  [[ -s $CERT_DIR/tls.key ]] && return 0
  mkdir -p "$CERT_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=keda-operator" \
    -addext "subjectAltName=DNS:keda-operator,DNS:localhost,IP:127.0.0.1" \
    -keyout "$CERT_DIR/tls.key" -out "$CERT_DIR/tls.crt" >/dev/null 2>&1 ||
    die "openssl could not make KEDA's certificates in $CERT_DIR"
  cp "$CERT_DIR/tls.crt" "$CERT_DIR/ca.crt"
}

up() {
  [[ -x $KEDA_OPERATOR ]] || die "$KEDA_OPERATOR is missing (cluster/build.sh all builds it)"
  mkdir -p "$PLATFORM_DIR"
  local crds
  crds=$(crd_dir)
  # Server-side apply: these CRDs are too large for the last-applied annotation.
  kubectl_ apply --server-side --force-conflicts -f "$crds" >/dev/null
  kubectl_ wait --for=condition=Established --timeout=60s -f "$crds" >/dev/null
  kubectl_ create namespace "$KEDA_NAMESPACE" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  certificates
  local probe_port metrics_port service_port
  probe_port=$(port_for keda-probe)
  metrics_port=$(port_for keda-metrics)
  service_port=$(port_for keda-metrics-service)
  # Every namespace (WATCH_NAMESPACE empty); its own objects in $KEDA_NAMESPACE; the cluster
  # from $KUBECONFIG (lib.sh).
  WATCH_NAMESPACE="" KEDA_CLUSTER_OBJECT_NAMESPACE=$KEDA_NAMESPACE POD_NAMESPACE=$KEDA_NAMESPACE \
    spawn keda-operator "$KEDA_OPERATOR" \
    --health-probe-bind-address="127.0.0.1:$probe_port" \
    --metrics-bind-address="127.0.0.1:$metrics_port" \
    --metrics-service-bind-address="127.0.0.1:$service_port" \
    --cert-dir="$CERT_DIR" \
    --enable-webhook-patching=false --enable-apiservice-patching=false
  wait_for 60 curl -fsS "http://127.0.0.1:$probe_port/readyz" ||
    die "the KEDA operator did not start (log: $PLATFORM_DIR/keda-operator.log)"
  echo "KEDA $KEDA_VERSION operator running (log: $PLATFORM_DIR/keda-operator.log)"
}

down() {
  local live=0
  "$KUBECTL" get --raw /readyz >/dev/null 2>&1 && live=1
  # ScaledObjects carry KEDA's finalizer: they go while the operator runs, then the CRDs.
  if ((live)) && kubectl_ get crd scaledobjects.keda.sh >/dev/null 2>&1; then
    kubectl_ delete --all-namespaces --all scaledobjects.keda.sh --timeout=60s >/dev/null || true
  fi
  stop keda-operator
  ((live)) || return 0
  kubectl_ delete --ignore-not-found -f "$(crd_dir)" >/dev/null
  kubectl_ delete --ignore-not-found namespace "$KEDA_NAMESPACE" --wait=false >/dev/null
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: cluster/platform/keda.sh up|down" ;;
esac
