#!/usr/bin/env bash
# Monitoring as a production cluster has it: the Prometheus Operator (a host process) and a
# Prometheus custom resource `modeldeploy` in the namespace `monitoring`, which the operator runs
# as a StatefulSet on the real node. The Prometheus selects the PodMonitors and PrometheusRules
# the modeldeploy operator writes (label app.kubernetes.io/part-of=modeldeploy, every namespace).
# The operator's governing Service prometheus-operated.monitoring:9090 is the modeldeploy
# operator's default Prometheus URL; from the host, the Service `prometheus` (a ClusterIP that
# kube-proxy serves on the host too) is in .cluster/platform/prometheus.url.
# Besides what the operator's selectors find, Prometheus scrapes Traefik, a host process
# (gateway.sh), in the job traefik-metrics: a static target from the Secret
# additional-scrape-configs, the Prometheus Operator's way to add plain scrape configurations.
#
#   cluster/platform/monitoring.sh up | down
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

PROMETHEUS=modeldeploy
# The Secret with Prometheus' scrape configurations beyond the selected monitors (Traefik's).
SCRAPE_CONFIGS=additional-scrape-configs
# The label every object the modeldeploy operator writes carries (docs/monitoring.md).
SELECTED_LABEL='app.kubernetes.io/part-of: modeldeploy'
# Cluster-scoped objects, named so that they cannot clash with another installation's.
CLUSTER_ROLE=modeldeploy-platform-prometheus

# Every CRD of the operator: it runs a controller only for the kinds it finds.
crds() {
  local dir
  dir=$(cd "$ROOT/cluster/modules/prometheus-operator" &&
    go list -m -f '{{.Dir}}' github.com/prometheus-operator/prometheus-operator)
  [[ -d $dir/example/prometheus-operator-crd ]] || die "no Prometheus Operator module in the module cache (cluster/build.sh all downloads it)"
  # Server-side apply: these CRDs are too large for the last-applied annotation.
  kubectl_ apply --server-side --force-conflicts -f "$dir/example/prometheus-operator-crd" >/dev/null
  kubectl_ wait --for=condition=Established --timeout=60s -f "$dir/example/prometheus-operator-crd" >/dev/null
}

up() {
  [[ -x $PROMETHEUS_OPERATOR ]] || die "$PROMETHEUS_OPERATOR is missing (cluster/build.sh all builds it)"
  mkdir -p "$PLATFORM_DIR"
  crds
  local port
  port=$(port_for prometheus-operator)
  spawn prometheus-operator "$PROMETHEUS_OPERATOR" \
    --web.listen-address="127.0.0.1:$port" \
    --prometheus-config-reloader="$CONFIG_RELOADER_IMAGE"
  wait_for 60 curl -fsS "http://127.0.0.1:$port/healthz" ||
    die "the Prometheus Operator did not start (log: $PLATFORM_DIR/prometheus-operator.log)"

  kubectl_ apply -f - >/dev/null <<MANIFESTS
apiVersion: v1
kind: Namespace
metadata:
  name: $MONITORING_NAMESPACE
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: prometheus
  namespace: $MONITORING_NAMESPACE
---
# What Prometheus' Kubernetes service discovery reads, as in the operator's documentation.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $CLUSTER_ROLE
rules:
- apiGroups: [""]
  resources: [nodes, nodes/metrics, services, endpoints, pods]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
- nonResourceURLs: [/metrics]
  verbs: [get]
---
$(cluster_role_binding "$CLUSTER_ROLE" prometheus "$MONITORING_NAMESPACE")
---
apiVersion: v1
kind: Secret
metadata:
  name: $SCRAPE_CONFIGS
  namespace: $MONITORING_NAMESPACE
stringData:
  scrape-configs.yaml: |
    - job_name: traefik-metrics
      static_configs:
      - targets: ["$(traefik_metrics_address)"]
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: $PROMETHEUS
  namespace: $MONITORING_NAMESPACE
spec:
  image: $PROMETHEUS_IMAGE
  version: v$PROMETHEUS_VERSION
  replicas: 1
  serviceAccountName: prometheus
  # Short intervals: rollout analysis and the tests read rates over a minute or less.
  scrapeInterval: 5s
  evaluationInterval: 5s
  podMonitorSelector:
    matchLabels: {$SELECTED_LABEL}
  podMonitorNamespaceSelector: {}
  serviceMonitorSelector:
    matchLabels: {$SELECTED_LABEL}
  serviceMonitorNamespaceSelector: {}
  ruleSelector:
    matchLabels: {$SELECTED_LABEL}
  ruleNamespaceSelector: {}
  additionalScrapeConfigs: {name: $SCRAPE_CONFIGS, key: scrape-configs.yaml}
  resources:
    requests: {cpu: 50m, memory: 128Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: prometheus
  namespace: $MONITORING_NAMESPACE
spec:
  selector:
    app.kubernetes.io/name: prometheus
    prometheus: $PROMETHEUS
  ports:
  - {name: web, port: 9090, targetPort: web}
MANIFESTS
  local ip
  ip=$(kubectl_ get -n "$MONITORING_NAMESPACE" service prometheus -o jsonpath='{.spec.clusterIP}')
  echo "http://$ip:9090" >"$PLATFORM_DIR/prometheus.url"
  if ! has_real_node; then
    echo "no real node: Prometheus $PROMETHEUS_VERSION is declared but does not run (kwok nodes only)"
    return 0
  fi
  kubectl_ wait --for=condition=Available --timeout=180s -n "$MONITORING_NAMESPACE" "prometheus/$PROMETHEUS" >/dev/null ||
    die "Prometheus $MONITORING_NAMESPACE/$PROMETHEUS is not available (kubectl -n $MONITORING_NAMESPACE describe prometheus $PROMETHEUS; operator log: $PLATFORM_DIR/prometheus-operator.log)"
  wait_for 60 curl -fsS "http://$ip:9090/-/ready" ||
    die "Prometheus is not reachable from the host at http://$ip:9090"
  echo "Prometheus $PROMETHEUS_VERSION (Prometheus Operator $PROMETHEUS_OPERATOR_VERSION) at http://$ip:9090"
}

down() {
  local live=0
  "$KUBECTL" get --raw /readyz >/dev/null 2>&1 && live=1
  # The operator deletes the StatefulSet with the custom resource: delete it while it runs.
  if ((live)); then
    kubectl_ delete --ignore-not-found --wait -n "$MONITORING_NAMESPACE" "prometheus/$PROMETHEUS" >/dev/null 2>&1 || true
  fi
  stop prometheus-operator
  if ((live)); then
    kubectl_ delete --ignore-not-found "clusterrolebinding/$CLUSTER_ROLE" "clusterrole/$CLUSTER_ROLE" >/dev/null
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: cluster/platform/monitoring.sh up|down" ;;
esac
