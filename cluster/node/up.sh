#!/usr/bin/env bash
# Starts the real node of the local cluster: containerd (its own root, state and socket), a
# kubelet and a kube-proxy built from the control plane's Kubernetes module, pods on a CNI
# bridge, the node's IP on a host veth. cluster/up.sh runs it after the control plane.
#
#   cluster/node/up.sh network      create the node's veth (before the control plane: the
#                                   apiserver's certificate names its IP)
#   cluster/node/up.sh start        start the node and wait until it runs a pod
#
# Needs root. A machine that cannot run containers fails here, loudly; opt out by name with
# MODELDEPLOY_REAL_NODE=0 (kwok nodes only).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"
CACHE=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
# Images persist across restarts of the cluster (importing is the slow part of a start).
CONTAINERD_ROOT=$CACHE/node/$INSTANCE/containerd
CONTAINERD_STATE=$NODE_DIR/containerd/state
CONTAINERD_SOCKET=$NODE_DIR/containerd/containerd.sock
CNI_CONF_DIR=$NODE_DIR/cni/net.d
CNI_IPAM_DIR=$NODE_DIR/cni/ipam
PIDS=$NODE_DIR/pids
LOGS=$NODE_DIR/logs
export KUBECONFIG=$STATE/kubeconfig
OPT_OUT="set MODELDEPLOY_REAL_NODE=0 to run the cluster with kwok nodes only"

die() { echo "modeldeploy node: $*" >&2; exit 1; }

# The Debian packages the node runs on (the pause image is built with gcc and buildah).
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack buildah podman gcc libc6-dev)

# The one machine-wide kube-proxy slot (its iptables chains are global).
claim_machine() {
  if [[ -f $REAL_NODE_OWNER ]]; then
    local owner pid
    read -r owner pid <"$REAL_NODE_OWNER"
    if [[ $owner != "$ROOT" ]] && kill -0 "$pid" 2>/dev/null; then
      die "another checkout's real node runs on this machine ($owner); stop it with its cluster/down.sh, or $OPT_OUT"
    fi
  fi
  # The owner is alive as long as its containerd is; written again once it runs.
  echo "$ROOT $$" >"$REAL_NODE_OWNER"
}

network() {
  [[ $(id -u) == 0 ]] || die "the real node needs root; $OPT_OUT"
  "$ROOT/cluster/apt-install.sh" "${NODE_PACKAGES[@]}" || die "the real node's packages are missing; $OPT_OUT"
  claim_machine
  if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    # Both ends stay on the host: the kernel here has no dummy netdev, a veth is the cheapest
    # link that can carry the node's address.
    ip link add "$NODE_LINK" type veth peer name "$NODE_PEER_LINK" ||
      die "cannot create a veth pair; $OPT_OUT"
  fi
  ip addr replace "$NODE_IP/24" dev "$NODE_LINK"
  ip link set "$NODE_PEER_LINK" up
  ip link set "$NODE_LINK" up
}

# The apiserver listens on every address (kwokctl's components reach it on 127.0.0.1, pods on
# the node IP); only loopback and this node's pod bridge may connect.
guard_apiserver() {
  local port=$1 chain=MODELDEPLOY-$INSTANCE
  iptables -N "$chain" 2>/dev/null || iptables -F "$chain"
  iptables -A "$chain" -i lo -j RETURN
  iptables -A "$chain" -i "$BRIDGE" -j RETURN
  iptables -A "$chain" -j DROP
  iptables -C INPUT -p tcp --dport "$port" -j "$chain" 2>/dev/null ||
    iptables -I INPUT -p tcp --dport "$port" -j "$chain"
}

render() {
  local template=$1 out=$2
  CONTAINERD_ROOT=$CONTAINERD_ROOT CONTAINERD_STATE=$CONTAINERD_STATE \
    CONTAINERD_SOCKET=$CONTAINERD_SOCKET CNI_CONF_DIR=$CNI_CONF_DIR CNI_IPAM_DIR=$CNI_IPAM_DIR \
    BRIDGE=$BRIDGE CNI_NETWORK=$CNI_NETWORK POD_CIDR=$POD_CIDR PKI_DIR=$PKI_DIR NODE_IP=$NODE_IP NODE_DIR=$NODE_DIR \
    NODE_NAME=$NODE_NAME CGROUP_ROOT=$CGROUP_ROOT CLUSTER_DNS_IP=$CLUSTER_DNS_IP \
    PAUSE_IMAGE=$PAUSE_IMAGE KUBELET_PORT=$KUBELET_PORT KUBELET_HEALTHZ_PORT=$KUBELET_HEALTHZ_PORT \
    KUBE_PROXY_HEALTHZ_PORT=$KUBE_PROXY_HEALTHZ_PORT KUBE_PROXY_METRICS_PORT=$KUBE_PROXY_METRICS_PORT \
    envsubst <"$ROOT/cluster/node/$template" >"$out"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# spawn NAME COMMAND...: a background process in its own session, its pid in $PIDS/NAME.pid.
spawn() {
  local name=$1
  shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# A client certificate of the cluster's CA (the apiserver maps CN to the user, O to the group).
client_cert() {
  local name=$1 subject=$2
  openssl req -new -newkey rsa:2048 -nodes -subj "$subject" \
    -keyout "$NODE_DIR/pki/$name.key" -out "$NODE_DIR/pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$NODE_DIR/pki/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
    -CAcreateserial -days 30 -out "$NODE_DIR/pki/$name.crt" 2>/dev/null
  rm "$NODE_DIR/pki/$name.csr"
}

kubeconfig_for() {
  local name=$1 server=$2
  cat >"$NODE_DIR/$name.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority: "$PKI_DIR/ca.crt"}
users:
- name: $name
  user: {client-certificate: "$NODE_DIR/pki/$name.crt", client-key: "$NODE_DIR/pki/$name.key"}
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
KUBECONFIG
}

# wait_for TRIES COMMAND...: retries COMMAND every half second, TRIES times at most.
wait_for() {
  local tries=$1
  shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

# Proof that this machine runs containers: a pod with a real sandbox, network and process.
smoke_pod() {
  "$KUBECTL" apply -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: real-node-check, namespace: kube-system}
spec:
  nodeName: $NODE_NAME
  restartPolicy: Never
  containers:
  - {name: pause, image: $PAUSE_IMAGE, imagePullPolicy: Never}
POD
  if ! "$KUBECTL" -n kube-system wait --for=condition=Ready pod/real-node-check --timeout=120s >/dev/null; then
    "$KUBECTL" -n kube-system describe pod real-node-check | tail -8 >&2
    die "the real node cannot run a pod (logs: $LOGS); $OPT_OUT"
  fi
  "$KUBECTL" -n kube-system delete pod real-node-check --wait=false >/dev/null
}

start() {
  local start_time=$SECONDS
  eval "$("$ROOT/cluster/build.sh" paths)"
  [[ -x $KUBELET && -x $KUBE_PROXY ]] || die "no kubelet or kube-proxy in $(dirname "$KUBELET") (cluster/build.sh all builds them)"
  PAUSE_IMAGE=$("$ROOT/cluster/node/pause.sh" ref)
  "$ROOT/cluster/node/pause.sh" build
  mkdir -p "$PIDS" "$LOGS" "$NODE_DIR/pki" "$CNI_CONF_DIR" "$CNI_IPAM_DIR" "$CONTAINERD_ROOT" \
    "$(dirname "$CONTAINERD_SOCKET")" "$NODE_DIR/kubelet"
  KUBELET_PORT=$(free_port) KUBELET_HEALTHZ_PORT=$(free_port)
  KUBE_PROXY_HEALTHZ_PORT=$(free_port) KUBE_PROXY_METRICS_PORT=$(free_port)
  render containerd.toml "$NODE_DIR/containerd.toml"
  render cni.conflist "$CNI_CONF_DIR/10-modeldeploy.conflist"
  render kubelet.yaml "$NODE_DIR/kubelet.yaml"
  render kube-proxy.yaml "$NODE_DIR/kube-proxy.yaml"

  # The pods' cgroup parent, in every cgroup v1 hierarchy (cgroupfs driver; no systemd here).
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -f $hierarchy/cgroup.procs ]] && mkdir -p "$hierarchy${CGROUP_ROOT#/}"
  done
  # A new cpuset cgroup starts with no CPUs and no memory nodes: give it its parent's.
  local cpuset=/sys/fs/cgroup/cpuset
  if [[ -f $cpuset/cpuset.cpus ]]; then
    cat "$cpuset/cpuset.cpus" >"$cpuset$CGROUP_ROOT/cpuset.cpus"
    cat "$cpuset/cpuset.mems" >"$cpuset$CGROUP_ROOT/cpuset.mems"
  fi
  sysctl -qw net.ipv4.ip_forward=1

  spawn containerd containerd --config "$NODE_DIR/containerd.toml"
  wait_for 60 ctr --address "$CONTAINERD_SOCKET" version ||
    die "containerd did not start (log: $LOGS/containerd.log); $OPT_OUT"
  echo "$ROOT $(cat "$PIDS/containerd.pid")" >"$REAL_NODE_OWNER"
  "$ROOT/cluster/node/load-images.sh"

  local server port
  server=$(sed -n 's/^\s*server: //p' "$KUBECONFIG" | head -1)
  port=${server##*:}
  client_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  client_cert kube-proxy "/CN=system:kube-proxy"
  kubeconfig_for kubelet "https://$NODE_IP:$port"
  kubeconfig_for kube-proxy "https://$NODE_IP:$port"

  local kubelet_start=$SECONDS
  spawn kubelet "$KUBELET" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$NODE_DIR/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
    --cert-dir "$NODE_DIR/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "type=real,node.kubernetes.io/instance-type=real"
  spawn kube-proxy "$KUBE_PROXY" --config "$NODE_DIR/kube-proxy.yaml"
  wait_for 240 "$KUBECTL" wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s ||
    die "the real node did not become Ready (log: $LOGS/kubelet.log); $OPT_OUT"
  echo "real node Ready $((SECONDS - kubelet_start))s after the kubelet started"
  smoke_pod
  echo "real node $NODE_NAME ($NODE_IP) runs pods; started in $((SECONDS - start_time))s"
}

case ${1:-} in
  network) network ;;
  guard) guard_apiserver "${2:?usage: cluster/node/up.sh guard PORT}" ;;
  start) start ;;
  *) die "usage: cluster/node/up.sh network|guard PORT|start" ;;
esac
