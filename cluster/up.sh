#!/usr/bin/env bash
# Starts the local Kubernetes control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake nodes that "run" pods), all built from
# their Go modules by cluster/build.sh and orchestrated by kwokctl's binary runtime.
#
# Writes .cluster/kubeconfig. A healthy running cluster is reused. Environment:
#   MODELDEPLOY_NODES=3              fake nodes to create
#   MODELDEPLOY_PLATFORM_CRDS=0      skip the Gateway API and Prometheus Operator CRDs
#   MODELDEPLOY_PLATFORM=0           no Gateway, Prometheus, DNS, metrics-server (cluster/platform/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=$ROOT/.cluster
NAME=modeldeploy
NODES=${MODELDEPLOY_NODES:-3}
export KWOK_WORKDIR=$STATE/kwok
export KUBECONFIG=$STATE/kubeconfig

die() { echo "modeldeploy cluster: $*" >&2; exit 1; }

"$ROOT/cluster/build.sh" all
eval "$("$ROOT/cluster/build.sh" paths)"

# Healthy: every component we started is alive, the apiserver is ready and the nodes are Ready.
healthy() {
  local f
  for f in "$KWOK_WORKDIR/clusters/$NAME"/pids/*.pid; do
    [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null || return 1
  done
  [[ -f $KUBECONFIG ]] && "$KUBECTL" get --raw /readyz >/dev/null 2>&1 &&
    [[ $("$KUBECTL" get nodes --no-headers 2>/dev/null | grep -cw Ready) -ge $NODES ]]
}

if healthy; then
  echo "reusing the running cluster ($KUBECONFIG)"
  "$ROOT/cluster/platform/up.sh" # the platform around the cluster (cluster/platform/)
  exit 0
fi
if [[ -d $KWOK_WORKDIR ]]; then
  echo "found a stopped or unhealthy cluster; removing it first"
  "$ROOT/cluster/down.sh"
fi
mkdir -p "$STATE"

start=$SECONDS
echo "starting the control plane (Kubernetes $KUBE_VERSION) on 127.0.0.1"
# kwokctl picks free ports for every component, so a second checkout's cluster never collides.
if ! "$KWOKCTL" create cluster --name "$NAME" \
  --config "$ROOT/cluster/kwok/kwokctl.yaml" --config "$ROOT/cluster/kwok/stages.yaml" \
  --kube-apiserver-binary "$KUBE_APISERVER" \
  --kube-controller-manager-binary "$KUBE_CONTROLLER_MANAGER" \
  --kube-scheduler-binary "$KUBE_SCHEDULER" \
  --etcd-binary "$ETCD" \
  --kwok-controller-binary "$KWOK" \
  --kube-audit-policy "$ROOT/cluster/kwok/audit-policy.yaml" \
  --kubeconfig "$KUBECONFIG" \
  --wait 120s >"$STATE/kwokctl.log" 2>&1; then
  tail -5 "$STATE/kwokctl.log" >&2
  die "the control plane did not start (full log: $STATE/kwokctl.log, component logs: $KWOK_WORKDIR/clusters/$NAME/logs)"
fi

echo "adding $NODES fake nodes"
for i in $(seq 0 $((NODES - 1))); do
  "$KUBECTL" apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node.kubernetes.io/instance-type: kwok
    topology.kubernetes.io/zone: zone-$((i % 3))
    type: kwok
  annotations:
    kwok.x-k8s.io/node: fake
NODE
done
"$KUBECTL" wait --for=condition=Ready node --all --timeout=60s >/dev/null ||
  die "the fake nodes did not become Ready (kwok log: $KWOK_WORKDIR/clusters/$NAME/logs/kwok-controller.log)"

if [[ ${MODELDEPLOY_PLATFORM_CRDS:-1} != 0 ]]; then
  "$ROOT/cluster/platform-crds.sh" apply
fi

# Namespaces are usable once the controller-manager has created their default ServiceAccount.
for _ in $(seq 120); do
  "$KUBECTL" get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done
"$KUBECTL" get serviceaccount default >/dev/null || die "the controller-manager is not running (log: $KWOK_WORKDIR/clusters/$NAME/logs)"
echo "cluster ready in $((SECONDS - start))s — KUBECONFIG=$KUBECONFIG"
"$ROOT/cluster/platform/up.sh" # the platform around the cluster (cluster/platform/)
