# Sourced by cluster/platform/*.sh: where the platform's state lives, the images it runs, and
# how host processes are started and stopped.
# shellcheck shell=bash

STATE=$ROOT/.cluster
PLATFORM_DIR=$STATE/platform
export KUBECONFIG=${KUBECONFIG:-$STATE/kubeconfig}
CACHE=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
eval "$("$ROOT/cluster/build.sh" paths)"

# The namespaces the platform's objects live in.
GATEWAY_NAMESPACE=modeldeploy-system
MONITORING_NAMESPACE=monitoring
# The Service IP the kubelet's clusterDNS points at (cluster/node/kubelet.yaml).
CLUSTER_DNS_IP=${CLUSTER_DNS_IP:-10.96.0.10}

# Images for the pods the platform runs on the real node, handed to it as OCI archives
# (contract: cluster/node/load-images.sh).
IMAGE_LOAD_DIR=$CACHE/images/load
PROMETHEUS_IMAGE=localhost/modeldeploy-prometheus:v$PROMETHEUS_VERSION
CONFIG_RELOADER_IMAGE=localhost/modeldeploy-prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION
COREDNS_IMAGE=localhost/modeldeploy-coredns:$COREDNS_VERSION
METRICS_SERVER_IMAGE=localhost/modeldeploy-metrics-server:$METRICS_SERVER_VERSION

die() { echo "modeldeploy platform: $*" >&2; exit 1; }
kubectl_() { "$KUBECTL" "$@"; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The port recorded under NAME, chosen once per cluster so that restarts keep their addresses.
port_for() {
  local file=$PLATFORM_DIR/$1.port
  [[ -s $file ]] || free_port >"$file"
  cat "$file"
}

# spawn NAME COMMAND...: runs a host process in the background, its pid in $PLATFORM_DIR/NAME.pid
# and its output in $PLATFORM_DIR/NAME.log. A live process of that name is left running.
spawn() {
  local name=$1
  shift
  running "$name" && return 0
  # The marker in its environment tells our process from an unrelated one with a reused pid.
  MODELDEPLOY_PLATFORM_DIR=$PLATFORM_DIR setsid "$@" >"$PLATFORM_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$PLATFORM_DIR/$name.pid"
}

# Whether NAME's recorded process is alive and is the one spawn started (a stale pid file after
# a reboot may name an unrelated process).
running() {
  local file=$PLATFORM_DIR/$1.pid pid
  [[ -f $file ]] || return 1
  pid=$(cat "$file")
  kill -0 "$pid" 2>/dev/null &&
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "MODELDEPLOY_PLATFORM_DIR=$PLATFORM_DIR"
}

stop() {
  local name=$1 pid
  running "$name" || { rm -f "$PLATFORM_DIR/$name.pid"; return 0; }
  pid=$(cat "$PLATFORM_DIR/$name.pid")
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { echo "$name ($pid) did not stop; killing it"; kill -9 "$pid"; }
  rm -f "$PLATFORM_DIR/$name.pid"
}

# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq $((seconds * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# cluster_role_binding NAME SERVICE_ACCOUNT NAMESPACE: the manifest binding the ClusterRole NAME
# to that ServiceAccount, for the platform's manifests.
cluster_role_binding() {
  cat <<BINDING
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: $1
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: $1
subjects:
- kind: ServiceAccount
  name: $2
  namespace: $3
BINDING
}

# Whether the cluster has a node that runs containers (cluster/node/), where the platform's
# pods go; kwok nodes carry a taint the platform's pods do not tolerate.
has_real_node() {
  [[ -n $(kubectl_ get nodes -l 'type!=kwok' -o name 2>/dev/null) ]]
}

# The real node's address (its InternalIP, the host end of cluster/node/'s veth): where host
# processes listen for what must reach them from pods or through a Service, since an Endpoint
# may not be a loopback address. Empty without a real node.
node_ip() {
  kubectl_ get nodes -l 'type!=kwok' \
    -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true
}

# Where Traefik serves its Prometheus metrics (gateway.sh), HOST:PORT, for the scrape job of
# the platform's Prometheus (monitoring.sh): the real node's address, which pods reach; without
# a real node no Prometheus runs to scrape it, and the loopback address is enough.
traefik_metrics_address() {
  local ip
  ip=$(node_ip)
  echo "${ip:-127.0.0.1}:$(port_for traefik-metrics)"
}

# register_api_service NAME GROUP SERVICE NAMESPACE WHAT LOGS: registers the aggregated API
# GROUP/v1beta1 served behind SERVICE, once its backend answers at the Service's cluster IP (until
# kube-proxy has a rule for it, the apiserver's connections to that IP leave the machine by the
# default route and stay open, answered by whatever is there), and waits until the apiserver
# reports it Available. The backend's certificate is self-signed. WHAT names the backend in
# errors; LOGS says where to look when it fails.
register_api_service() {
  local name=$1 group=$2 service=$3 namespace=$4 what=$5 logs=$6 cluster_ip
  cluster_ip=$(kubectl_ get -n "$namespace" service "$service" -o jsonpath='{.spec.clusterIP}')
  wait_for 60 curl -skf "https://$cluster_ip/readyz" ||
    die "$what does not answer at its Service's cluster IP $cluster_ip (is kube-proxy running?)"
  kubectl_ apply -f - >/dev/null <<MANIFESTS
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: $name
spec:
  group: $group
  version: v1beta1
  service: {name: $service, namespace: $namespace}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
MANIFESTS
  kubectl_ wait --for=condition=Available --timeout=120s "apiservice/$name" >/dev/null ||
    die "$what is not available (kubectl describe apiservice $name; $logs)"
}
