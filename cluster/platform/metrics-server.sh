#!/usr/bin/env bash
# The resource metrics API (metrics.k8s.io) that HorizontalPodAutoscalers read CPU from:
# metrics-server (cluster/modules/metrics-server) as a Deployment on the real node, registered
# with the apiserver by an APIService. Only with a real node: an APIService without a running
# backend makes API discovery fail for every client.
#
#   cluster/platform/metrics-server.sh up | down
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

CLUSTER_ROLE=modeldeploy-platform-metrics-server
API_SERVICE=v1beta1.metrics.k8s.io

up() {
  if ! has_real_node; then
    echo "no real node: no metrics-server (kwok nodes only)"
    return 0
  fi
  kubectl_ apply -f - >/dev/null <<MANIFESTS
apiVersion: v1
kind: ServiceAccount
metadata:
  name: metrics-server
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $CLUSTER_ROLE
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
$(cluster_role_binding "$CLUSTER_ROLE" metrics-server kube-system)
---
# Delegated authentication and authorization of the requests the apiserver forwards.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: $CLUSTER_ROLE-auth-delegator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
- kind: ServiceAccount
  name: metrics-server
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: metrics-server-auth-reader
  namespace: kube-system
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: extension-apiserver-authentication-reader
subjects:
- kind: ServiceAccount
  name: metrics-server
  namespace: kube-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: metrics-server}
  template:
    metadata:
      labels: {k8s-app: metrics-server}
    spec:
      serviceAccountName: metrics-server
      priorityClassName: system-cluster-critical
      containers:
      - name: metrics-server
        image: $METRICS_SERVER_IMAGE
        args:
        - --cert-dir=/tmp
        - --secure-port=10250
        - --kubelet-preferred-address-types=InternalIP
        # The kubelet's port is per checkout (the node status says which).
        - --kubelet-use-node-status-port
        # kwok's fake nodes have no kubelet to scrape.
        - --node-selector=type!=kwok
        # The local kubelet's serving certificate is self-signed.
        - --kubelet-insecure-tls
        # Short windows, so that an autoscaler sees a load change within seconds.
        - --metric-resolution=15s
        ports:
        - {name: https, containerPort: 10250, protocol: TCP}
        readinessProbe:
          httpGet: {path: /readyz, port: https, scheme: HTTPS}
        livenessProbe:
          httpGet: {path: /livez, port: https, scheme: HTTPS}
        resources:
          requests: {cpu: 20m, memory: 64Mi}
        securityContext:
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts:
        - {name: tmp, mountPath: /tmp}
      volumes:
      - name: tmp
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  selector: {k8s-app: metrics-server}
  ports:
  - {name: https, port: 443, targetPort: https}
MANIFESTS
  kubectl_ rollout status -n kube-system deployment/metrics-server --timeout=120s >/dev/null ||
    die "metrics-server is not ready (kubectl -n kube-system logs deploy/metrics-server)"
  register_api_service "$API_SERVICE" metrics.k8s.io metrics-server kube-system metrics-server \
    "kubectl -n kube-system logs deploy/metrics-server"
  echo "metrics-server $METRICS_SERVER_VERSION serving metrics.k8s.io"
}

down() {
  "$KUBECTL" get --raw /readyz >/dev/null 2>&1 || return 0
  # The APIService first: discovery fails for every client while it points at nothing.
  kubectl_ delete --ignore-not-found "apiservice/$API_SERVICE" >/dev/null
  kubectl_ delete --ignore-not-found -n kube-system service/metrics-server deployment/metrics-server \
    serviceaccount/metrics-server rolebinding/metrics-server-auth-reader >/dev/null
  kubectl_ delete --ignore-not-found "clusterrolebinding/$CLUSTER_ROLE" \
    "clusterrolebinding/$CLUSTER_ROLE-auth-delegator" "clusterrole/$CLUSTER_ROLE" >/dev/null
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: cluster/platform/metrics-server.sh up|down" ;;
esac
