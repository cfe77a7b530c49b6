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
# From one pod up, KEDA's HorizontalPodAutoscaler reads the external metrics API
# (v1beta1.external.metrics.k8s.io) that KEDA's metrics adapter serves: a host process too, on
# the real node's address, behind the selector-less Service keda/keda-metrics-apiserver whose
# EndpointSlice names that address (the apiserver reaches an APIService through its Service's
# cluster IP, and an Endpoint may not be a loopback address). Without a real node there is no
# adapter: an APIService without a backend makes API discovery fail for every client.
#
#   cluster/platform/keda.sh up | down
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

KEDA_NAMESPACE=keda
CERT_DIR=$PLATFORM_DIR/keda-certs
API_SERVICE=v1beta1.external.metrics.k8s.io
ADAPTER_SERVICE=keda-metrics-apiserver
# Lets the HorizontalPodAutoscaler controller read external metrics (the adapter authorizes
# every request with the apiserver); named so that it cannot clash with a KEDA installation's.
READER_ROLE=modeldeploy-platform-keda-external-metrics-reader

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
  # Built on first use, or finished first when `make test` is building it in the background.
  "$ROOT/cluster/build.sh" keda || die "KEDA did not build (cluster/build.sh keda)"
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
  adapter "$service_port"
}

# adapter OPERATOR_SERVICE_PORT: KEDA's metrics adapter, which asks the operator's gRPC metrics
# service for each value (mutual TLS from the same --cert-dir), and its APIService.
adapter() {
  [[ -x $KEDA_ADAPTER ]] || die "$KEDA_ADAPTER is missing (cluster/build.sh all builds it)"
  local ip
  ip=$(node_ip)
  if [[ -z $ip ]]; then
    echo "no real node: no KEDA metrics adapter (KEDA scales between zero and one pod only)"
    return 0
  fi
  local port metrics_port
  port=$(port_for keda-adapter)
  metrics_port=$(port_for keda-adapter-metrics)
  # The cluster from $KUBECONFIG for its own reads and for delegated authentication and
  # authorization of the requests the apiserver forwards (no in-cluster service account).
  WATCH_NAMESPACE="" POD_NAMESPACE=$KEDA_NAMESPACE \
    spawn keda-adapter "$KEDA_ADAPTER" \
    --bind-address="$ip" --secure-port="$port" \
    --cert-dir="$CERT_DIR" --tls-cert-file="$CERT_DIR/tls.crt" --tls-private-key-file="$CERT_DIR/tls.key" \
    --lister-kubeconfig="$KUBECONFIG" \
    --authentication-kubeconfig="$KUBECONFIG" --authorization-kubeconfig="$KUBECONFIG" \
    --metrics-service-address="127.0.0.1:$1" \
    --port="$metrics_port"
  wait_for 60 curl -skf "https://$ip:$port/readyz" ||
    die "KEDA's metrics adapter did not start (log: $PLATFORM_DIR/keda-adapter.log)"
  kubectl_ apply -f - >/dev/null <<MANIFESTS
apiVersion: v1
kind: Service
metadata:
  name: $ADAPTER_SERVICE
  namespace: $KEDA_NAMESPACE
spec:
  ports:
  - {name: https, port: 443, targetPort: $port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $ADAPTER_SERVICE
  namespace: $KEDA_NAMESPACE
  labels:
    kubernetes.io/service-name: $ADAPTER_SERVICE
    # Not the EndpointSlice controller's: it leaves this slice alone.
    endpointslice.kubernetes.io/managed-by: modeldeploy-platform
addressType: IPv4
endpoints:
- addresses: [$ip]
  conditions: {ready: true}
ports:
- {name: https, port: $port, protocol: TCP}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $READER_ROLE
rules:
- apiGroups: [external.metrics.k8s.io]
  resources: ["*"]
  verbs: [get, list, watch]
---
$(cluster_role_binding "$READER_ROLE" horizontal-pod-autoscaler kube-system)
MANIFESTS
  register_api_service "$API_SERVICE" external.metrics.k8s.io "$ADAPTER_SERVICE" "$KEDA_NAMESPACE" \
    "KEDA's metrics adapter" "log: $PLATFORM_DIR/keda-adapter.log"
  echo "KEDA $KEDA_VERSION metrics adapter serving external.metrics.k8s.io (log: $PLATFORM_DIR/keda-adapter.log)"
}

down() {
  local live=0
  "$KUBECTL" get --raw /readyz >/dev/null 2>&1 && live=1
  # The APIService first: discovery fails for every client while it points at nothing.
  if ((live)); then
    kubectl_ delete --ignore-not-found "apiservice/$API_SERVICE" >/dev/null
  fi
  stop keda-adapter
  # ScaledObjects carry KEDA's finalizer: they go while the operator runs, then the CRDs.
  if ((live)) && kubectl_ get crd scaledobjects.keda.sh >/dev/null 2>&1; then
    kubectl_ delete --all-namespaces --all scaledobjects.keda.sh --timeout=60s >/dev/null || true
  fi
  stop keda-operator
  ((live)) || return 0
  kubectl_ delete --ignore-not-found -f "$(crd_dir)" >/dev/null
  kubectl_ delete --ignore-not-found "clusterrolebinding/$READER_ROLE" "clusterrole/$READER_ROLE" >/dev/null
  # The namespace takes the adapter's Service and EndpointSlice with it.
  kubectl_ delete --ignore-not-found namespace "$KEDA_NAMESPACE" --wait=false >/dev/null
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: cluster/platform/keda.sh up|down" ;;
esac
