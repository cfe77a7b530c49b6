#!/usr/bin/env bash
# Stops this checkout's real node and undoes what cluster/node/up.sh set up on the machine:
# its pods' containers, kubelet, kube-proxy (and its iptables rules), containerd, mounts, links,
# the apiserver guard and the pods' cgroups. Images stay in containerd's root under the cache.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"
CONTAINERD_SOCKET=$NODE_DIR/containerd/containerd.sock
CONTAINERD_STATE=$NODE_DIR/containerd/state
PIDS=$NODE_DIR/pids

# stop NAME: the process up.sh spawned, if it is still ours (its command line names $NODE_DIR).
stop() {
  local file=$PIDS/$1.pid pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if grep -qa "$NODE_DIR" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

[[ -d $NODE_DIR ]] || exit 0
stop kubelet
stop kube-proxy
# The pods' network namespaces, which the CRI plugin mounts under /var/run/netns; killed
# containers get no CNI DEL, so they are removed below.
pod_netns=$(grep -ho '/var/run/netns/cni-[0-9a-f-]*' \
  "$CONTAINERD_STATE"/io.containerd.runtime.v2.task/k8s.io/*/config.json 2>/dev/null | sort -u || true)
if [[ -S $CONTAINERD_SOCKET ]]; then
  ctr_() { ctr --address "$CONTAINERD_SOCKET" --namespace k8s.io "$@"; }
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill --signal SIGKILL "$task" >/dev/null 2>&1 || true
  done
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    for _ in $(seq 25); do ctr_ tasks delete "$task" >/dev/null 2>&1 && break; sleep 0.2; done
  done
  for container in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers delete "$container" >/dev/null 2>&1 || true
  done
fi
stop containerd
# Shims outlive containerd; each names its containerd's socket.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCKET" || true); do
  kill -9 "$pid" 2>/dev/null || true
done

# drop_chain TOOL TABLE CHAIN: the chain and every rule that jumps to it.
drop_chain() {
  local tool=$1 table=$2 chain=$3 rule
  while read -r rule; do
    eval "$tool -t $table ${rule/-A /-D }" 2>/dev/null || true
  done < <("$tool" -t "$table" -S 2>/dev/null | grep -- "-A .* -j $chain\$" || true)
  "$tool" -t "$table" -F "$chain" 2>/dev/null || true
  "$tool" -t "$table" -X "$chain" 2>/dev/null || true
}

# The pods' masquerade rules (the CNI bridge plugin's; the containers died without a CNI DEL),
# which name the network in a comment: name: \"<network>\" (backslashes as iptables prints them).
while read -r chain; do
  drop_chain iptables nat "$chain"
done < <(iptables -t nat -S POSTROUTING 2>/dev/null | grep -F 'name: \"'"$CNI_NETWORK"'\"' |
  sed -n 's/.* -j \(CNI-[0-9a-f]*\)$/\1/p' | sort -u)

# kube-proxy's and the kubelet's chains are machine-wide: only the real node's owner clears them.
eval "$("$ROOT/cluster/build.sh" paths)"
if [[ -f $REAL_NODE_OWNER && $(cut -d' ' -f1 "$REAL_NODE_OWNER") == "$ROOT" ]]; then
  [[ -x $KUBE_PROXY ]] && "$KUBE_PROXY" --cleanup >/dev/null 2>&1 || true
  for tool in iptables ip6tables; do
    drop_chain "$tool" filter KUBE-FIREWALL
    for table in filter nat mangle; do drop_chain "$tool" "$table" KUBE-KUBELET-CANARY; done
    drop_chain "$tool" mangle KUBE-IPTABLES-HINT
  done
fi
drop_chain iptables filter "MODELDEPLOY-$INSTANCE"

for netns in $pod_netns; do ip netns delete "${netns##*/}" 2>/dev/null || true; done

# Volumes the kubelet mounted and the containers' root filesystems, deepest first.
findmnt -rn -o TARGET | { grep -F "$NODE_DIR/" || true; } | sort -r | while read -r target; do
  umount -l "$target" 2>/dev/null || true
done
ip link del "$BRIDGE" 2>/dev/null || true
ip link del "$NODE_LINK" 2>/dev/null || true
for hierarchy in /sys/fs/cgroup/*/; do
  [[ -d $hierarchy${CGROUP_ROOT#/} ]] &&
    find "$hierarchy${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
if [[ -f $REAL_NODE_OWNER ]] && [[ $(cut -d' ' -f1 "$REAL_NODE_OWNER") == "$ROOT" ]]; then
  rm -f "$REAL_NODE_OWNER"
fi
echo "real node stopped"
