# Sourced by the cluster scripts: the names, addresses and directories of this checkout's local
# cluster. Everything that could collide with another checkout's cluster on the same machine is
# derived from the checkout's path (ROOT), so two checkouts run side by side.
# shellcheck shell=bash

STATE=$ROOT/.cluster
INSTANCE=$(printf '%s' "$ROOT" | sha256sum | cut -c1-6)
CLUSTER_NAME=${MODELDEPLOY_CLUSTER_NAME:-modeldeploy-$INSTANCE}
export KWOK_WORKDIR=$STATE/kwok
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER_NAME
PKI_DIR=$CLUSTER_DIR/pki

# The real node (cluster/node/up.sh). One /16 per checkout, 10.100.0.0 to 10.189.0.0: clear of
# the Service range (10.96.0.0/16) and kwok's fake pod IPs (10.244.0.0/16).
NODE_NAME=real-node-0
NODE_OCTET=$((100 + 0x$INSTANCE % 90))
NODE_IP=10.$NODE_OCTET.255.1
NODE_PEER_IP=10.$NODE_OCTET.255.2
POD_CIDR=10.$NODE_OCTET.0.0/20
SERVICE_CIDR=10.96.0.0/16
# The `kubernetes` Service takes the range's first address; pods reach the apiserver there, so
# its serving certificate must name it.
KUBERNETES_SERVICE_IP=10.96.0.1
# Where cluster DNS answers, when it is installed (the kube-dns Service's clusterIP).
CLUSTER_DNS_IP=10.96.0.10
NODE_LINK=md$INSTANCE
NODE_PEER_LINK=md${INSTANCE}p
BRIDGE=mdbr$INSTANCE
# The CNI network's name: its plugins' iptables rules carry it in their comments.
CNI_NETWORK=modeldeploy-$INSTANCE
NODE_DIR=$STATE/node
CGROUP_ROOT=/modeldeploy-$INSTANCE
# The machine-wide owner of the one real node kube-proxy can serve (its iptables chains are
# global): the first checkout to start one owns it until its cluster/down.sh.
REAL_NODE_OWNER=/run/modeldeploy-real-node.owner
# Images for the node: OCI archives (contract in cluster/node/load-images.sh).
IMAGE_LOAD_DIR=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/images/load
