#!/usr/bin/env bash
# Starts the local Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes that "run" pods), all built from their Go modules by
# cluster/build.sh and orchestrated by kwokctl's binary runtime, and a real node (containerd,
# kubelet, kube-proxy: cluster/node/) where pods run for real.
#
# Pods land on the real node unless they tolerate the kwok nodes' taint
# (kwok.x-k8s.io/node=fake:NoSchedule): tests and benchmarks that want fake pods say so.
#
# Writes .cluster/kubeconfig. A healthy running cluster is reused. Environment:
#   MODELDEPLOY_NODES=3              fake nodes to create
#   MODELDEPLOY_REAL_NODE=0          no real node (machines that cannot run containers)
#   MODELDEPLOY_PLATFORM_CRDS=0      skip the Gateway API and Prometheus Operator CRDs
#   MODELDEPLOY_PLATFORM=0           no Gateway, Prometheus, DNS, metrics-server (cluster/platform/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"
NODES=${MODELDEPLOY_NODES:-3}
REAL_NODE=${MODELDEPLOY_REAL_NODE:-1}
export KUBECONFIG=$STATE/kubeconfig

die() { echo "modeldeploy cluster: $*" >&2; exit 1; }

"$ROOT/cluster/build.sh" required
eval "$("$ROOT/cluster/build.sh" paths)"

# Healthy: every component we started is alive, the apiserver is ready and the nodes are Ready.
healthy() {
  local pid_files=("$CLUSTER_DIR"/pids/*.pid) f
  [[ $REAL_NODE == 0 ]] || pid_files+=("$NODE_DIR"/pids/*.pid)
  for f in "${pid_files[@]}"; do
    [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null || return 1
  done
  [[ -f $KUBECONFIG ]] && "$KUBECTL" get --raw /readyz >/dev/null 2>&1 &&
    [[ $("$KUBECTL" get nodes --no-headers 2>/dev/null | grep -cw Ready) -ge $NODES ]] || return 1
  if [[ $REAL_NODE != 0 ]]; then
    [[ $("$KUBECTL" get node "$NODE_NAME" --no-headers 2>/dev/null) == *" Ready "* ]] || return 1
  fi
}

if healthy; then
  echo "reusing the running cluster ($KUBECONFIG)"
  # Images built since the node started (images/build.sh) are imported now.
  [[ $REAL_NODE == 0 ]] || "$ROOT/cluster/node/load-images.sh"
  "$ROOT/cluster/platform/up.sh" # the platform around the cluster (cluster/platform/)
  exit 0
fi
if [[ -d $KWOK_WORKDIR ]]; then
  echo "found a stopped or unhealthy cluster; removing it first"
  "$ROOT/cluster/down.sh"
fi
mkdir -p "$STATE"

start=$SECONDS
# kwokctl picks free ports for every component, so a second checkout's cluster never collides;
# the apiserver's is chosen here so that the real node's guard is in place before it listens.
APISERVER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
cp "$ROOT/cluster/kwok/kwokctl.yaml" "$STATE/kwokctl.yaml"
if [[ $REAL_NODE != 0 ]]; then
  "$ROOT/cluster/node/up.sh" network
  "$ROOT/cluster/node/up.sh" guard "$APISERVER_PORT"
  # Pods reach the apiserver at the node's IP (the `kubernetes` Service's endpoint).
  # kwokctl's own bindAddress cannot do this (v0.7.0 binds etcd to it but dials 127.0.0.1), so
  # only the apiserver listens beyond loopback; cluster/node/up.sh guard drops every connection
  # to it but from loopback and the node's pods.
  cat >>"$STATE/kwokctl.yaml" <<PATCH
- name: kube-apiserver
  extraArgs:
  - {key: bind-address, value: 0.0.0.0, override: true}
  - {key: advertise-address, value: $NODE_IP}
  # logs, exec and port-forward reach the kubelet at its node IP, as a client of the cluster's
  # CA (the kubelet authenticates and authorizes every request).
  - {key: kubelet-preferred-address-types, value: InternalIP}
  - {key: kubelet-client-certificate, value: $PKI_DIR/admin.crt}
  - {key: kubelet-client-key, value: $PKI_DIR/admin.key}
  # Aggregated APIs (metrics-server's metrics.k8s.io): the apiserver proxies to them with the
  # client certificate kwokctl gives it, which the extension apiserver checks against this CA; and
  # it dials their pods directly. While an APIService is unavailable, namespaces never finish
  # deleting.
  - {key: requestheader-client-ca-file, value: $PKI_DIR/ca.crt}
  - {key: requestheader-username-headers, value: X-Remote-User}
  - {key: requestheader-group-headers, value: X-Remote-Group}
  - {key: requestheader-extra-headers-prefix, value: X-Remote-Extra-}
  - {key: enable-aggregator-routing, value: "true"}
PATCH
  # The serving certificate names the node IP and the `kubernetes` Service's IP.
  sed -i "/^options:/a\\  kubeApiserverCertSANs: [$NODE_IP, $KUBERNETES_SERVICE_IP]" "$STATE/kwokctl.yaml"
fi
echo "starting the control plane (Kubernetes $KUBE_VERSION)"
if ! "$KWOKCTL" create cluster --name "$CLUSTER_NAME" \
  --config "$STATE/kwokctl.yaml" --config "$ROOT/cluster/kwok/stages.yaml" \
  --kube-apiserver-port "$APISERVER_PORT" \
  --kube-apiserver-binary "$KUBE_APISERVER" \
  --kube-controller-manager-binary "$KUBE_CONTROLLER_MANAGER" \
  --kube-scheduler-binary "$KUBE_SCHEDULER" \
  --etcd-binary "$ETCD" \
  --kwok-controller-binary "$KWOK" \
  --kube-audit-policy "$ROOT/cluster/kwok/audit-policy.yaml" \
  --kubeconfig "$KUBECONFIG" \
  --wait 120s >"$STATE/kwokctl.log" 2>&1 ||
  ! "$KUBECTL" get --raw /readyz >/dev/null 2>&1; then
  # kwokctl v0.7.0 exits 0 when its own wait fails: the apiserver's /readyz is the judge.
  tail -5 "$STATE/kwokctl.log" >&2
  die "the control plane did not start (full log: $STATE/kwokctl.log, component logs: $CLUSTER_DIR/logs)"
fi

ln -sfn "$CLUSTER_DIR/logs/audit.log" "$STATE/audit.log"

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
spec:
  taints:
  - {key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}
NODE
done
"$KUBECTL" wait --for=condition=Ready node -l type=kwok --timeout=60s >/dev/null ||
  die "the fake nodes did not become Ready (kwok log: $CLUSTER_DIR/logs/kwok-controller.log)"

if [[ ${MODELDEPLOY_PLATFORM_CRDS:-1} != 0 ]]; then
  "$ROOT/cluster/platform-crds.sh" apply
fi

# Namespaces are usable once the controller-manager has created their default ServiceAccount.
for _ in $(seq 120); do
  "$KUBECTL" get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done
"$KUBECTL" get serviceaccount default >/dev/null || die "the controller-manager is not running (log: $CLUSTER_DIR/logs)"

if [[ $REAL_NODE != 0 ]]; then
  "$ROOT/cluster/node/up.sh" start
fi
echo "cluster ready in $((SECONDS - start))s — KUBECONFIG=$KUBECONFIG"
"$ROOT/cluster/platform/up.sh" # the platform around the cluster (cluster/platform/)
