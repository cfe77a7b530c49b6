#!/usr/bin/env bash
# Cluster DNS: CoreDNS (cluster/modules/coredns) as a Deployment on the real node behind the
# Service kube-system/kube-dns at the fixed IP the kubelet's clusterDNS names, so pods resolve
# Service names (<service>.<namespace>.svc.cluster.local).
#
#   cluster/platform/dns.sh up | down
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

CLUSTER_ROLE=modeldeploy-platform-coredns
# CoreDNS listens above 1024 so that it runs without privileges; the Service maps port 53 to it.
DNS_PORT=1053

up() {
  kubectl_ apply -f - >/dev/null <<MANIFESTS
apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: $CLUSTER_ROLE
rules:
- apiGroups: [""]
  resources: [services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
$(cluster_role_binding "$CLUSTER_ROLE" coredns kube-system)
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  # Names outside the cluster go to the node's resolver (the pod's dnsPolicy is Default).
  Corefile: |
    .:$DNS_PORT {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        prometheus :9153
        forward . /etc/resolv.conf
        cache 30
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      priorityClassName: system-cluster-critical
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: $DNS_PORT, protocol: UDP}
        - {name: dns-tcp, containerPort: $DNS_PORT, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
        livenessProbe:
          httpGet: {path: /health, port: 8080}
        resources:
          requests: {cpu: 20m, memory: 32Mi}
          limits: {memory: 128Mi}
        securityContext:
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $CLUSTER_DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, targetPort: dns, protocol: UDP}
  - {name: dns-tcp, port: 53, targetPort: dns-tcp, protocol: TCP}
  - {name: metrics, port: 9153, targetPort: metrics, protocol: TCP}
MANIFESTS
  if ! has_real_node; then
    echo "no real node: CoreDNS $COREDNS_VERSION is declared but does not run (kwok nodes only)"
    return 0
  fi
  kubectl_ rollout status -n kube-system deployment/coredns --timeout=120s >/dev/null ||
    die "CoreDNS is not ready (kubectl -n kube-system describe pods -l k8s-app=kube-dns)"
  echo "CoreDNS $COREDNS_VERSION at $CLUSTER_DNS_IP"
}

down() {
  "$KUBECTL" get --raw /readyz >/dev/null 2>&1 || return 0
  kubectl_ delete --ignore-not-found -n kube-system service/kube-dns deployment/coredns \
    configmap/coredns serviceaccount/coredns >/dev/null
  kubectl_ delete --ignore-not-found "clusterrolebinding/$CLUSTER_ROLE" "clusterrole/$CLUSTER_ROLE" >/dev/null
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: cluster/platform/dns.sh up|down" ;;
esac
