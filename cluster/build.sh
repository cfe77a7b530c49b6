#!/usr/bin/env bash
# Builds, once per version, the binaries of the local control plane and the tools the tests use,
# from their Go modules through the module proxy. Output is cached outside the repository:
#   ${MODELDEPLOY_CACHE:-~/.cache/modeldeploy}/<component>/<version>/bin/
# The versions are pinned in cluster/modules/*/go.mod (one consumer module per component, because
# their Kubernetes library versions differ).
#
#   cluster/build.sh all            build everything that is missing
#   cluster/build.sh required       all but the optional components (OPTIONAL): what a cluster needs
#   cluster/build.sh keda           only KEDA (waits for a build of it already under way)
#   cluster/build.sh platform       build only the platform components (PLATFORM)
#   cluster/build.sh paths          print NAME=PATH lines for every binary (builds nothing)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODULES=$ROOT/cluster/modules
CACHE=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
LOG_DIR=$CACHE/logs

die() { echo "modeldeploy cluster: $*" >&2; exit 1; }

# The version a consumer module pins for a dependency, read from its go.mod.
# A lone requirement is written on one line: `require MODULE VERSION`.
pinned() {
  awk -v m="$2" '$1 == "require" {$1 = ""; $0 = $0} $1 == m && $2 ~ /^v/ {print $2; exit}' "$MODULES/$1/go.mod"
}

KUBE_VERSION=$(pinned kubernetes k8s.io/kubernetes)
ETCD_VERSION=$(pinned etcd go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(pinned kwok sigs.k8s.io/kwok)
HELM_VERSION=$(pinned helm helm.sh/helm/v3)

KUBE_BIN=$CACHE/k8s/$KUBE_VERSION/bin
ETCD_BIN=$CACHE/etcd/$ETCD_VERSION/bin
KWOK_BIN=$CACHE/kwok/$KWOK_VERSION/bin
HELM_BIN=$CACHE/helm/$HELM_VERSION/bin

# The model platform around the cluster: Gateway API data plane, monitoring, DNS, metrics API.
TRAEFIK_VERSION=$(pinned traefik github.com/traefik/traefik/v3)
PROMETHEUS_OPERATOR_VERSION=$(pinned prometheus-operator github.com/prometheus-operator/prometheus-operator)
PROMETHEUS_MODULE_VERSION=$(pinned prometheus github.com/prometheus/prometheus)
# Prometheus 3.x.y is published as module version v0.<x*100+y>.z: v0.316.0 is 3.16.0.
PROMETHEUS_VERSION=$(awk -F. '{printf "%d.%d.%s", int($2 / 100), $2 % 100, $3}' <<<"$PROMETHEUS_MODULE_VERSION")
COREDNS_VERSION=$(pinned coredns github.com/coredns/coredns)
METRICS_SERVER_VERSION=$(pinned metrics-server sigs.k8s.io/metrics-server)
KEDA_VERSION=$(pinned keda github.com/kedacore/keda/v2)

TRAEFIK_BIN=$CACHE/traefik/$TRAEFIK_VERSION/bin
PROMETHEUS_OPERATOR_BIN=$CACHE/prometheus-operator/$PROMETHEUS_OPERATOR_VERSION/bin
PROMETHEUS_BIN=$CACHE/prometheus/$PROMETHEUS_MODULE_VERSION/bin
COREDNS_BIN=$CACHE/coredns/$COREDNS_VERSION/bin
METRICS_SERVER_BIN=$CACHE/metrics-server/$METRICS_SERVER_VERSION/bin
KEDA_BIN=$CACHE/keda/$KEDA_VERSION/bin
# Only Kubernetes service discovery: the others pull in every cloud SDK for nothing.
PROMETHEUS_TAGS=remove_all_sd,enable_kubernetes_sd
PROMETHEUS_COMMON=github.com/prometheus/common/version

print_paths() {
  cat <<PATHS
KUBE_VERSION=$KUBE_VERSION
KUBE_APISERVER=$KUBE_BIN/kube-apiserver
KUBE_CONTROLLER_MANAGER=$KUBE_BIN/kube-controller-manager
KUBE_SCHEDULER=$KUBE_BIN/kube-scheduler
KUBELET=$KUBE_BIN/kubelet
KUBE_PROXY=$KUBE_BIN/kube-proxy
KUBECTL=$(command -v kubectl || echo "$KUBE_BIN/kubectl")
ETCD=$ETCD_BIN/etcd
KWOK=$KWOK_BIN/kwok
KWOKCTL=$KWOK_BIN/kwokctl
HELM=$HELM_BIN/helm
TRAEFIK_VERSION=$TRAEFIK_VERSION
TRAEFIK=$TRAEFIK_BIN/traefik
PROMETHEUS_OPERATOR_VERSION=$PROMETHEUS_OPERATOR_VERSION
PROMETHEUS_OPERATOR=$PROMETHEUS_OPERATOR_BIN/operator
PROMETHEUS_CONFIG_RELOADER=$PROMETHEUS_OPERATOR_BIN/prometheus-config-reloader
PROMETHEUS_VERSION=$PROMETHEUS_VERSION
PROMETHEUS=$PROMETHEUS_BIN/prometheus
COREDNS_VERSION=$COREDNS_VERSION
COREDNS=$COREDNS_BIN/coredns
METRICS_SERVER_VERSION=$METRICS_SERVER_VERSION
METRICS_SERVER=$METRICS_SERVER_BIN/metrics-server
KEDA_VERSION=$KEDA_VERSION
KEDA_OPERATOR=$KEDA_BIN/operator
KEDA_ADAPTER=$KEDA_BIN/adapter
PATHS
}

preflight() {
  command -v go >/dev/null || die "the Go toolchain is missing: install Go >= 1.24 (https://go.dev/doc/install) and retry"
}

# build COMPONENT VERSION OUTDIR MODULE_DIR LDFLAGS PACKAGE...
build() {
  local name=$1 version=$2 out=$3 module=$4 ldflags=$5
  shift 5
  local missing=0 pkg lock
  mkdir -p "$out" "$LOG_DIR"
  # One build of a component at a time: a second caller waits, then finds the binaries.
  exec {lock}>"$out/.build.lock"
  flock "$lock"
  for pkg in "$@"; do [[ -x $out/$(basename "$pkg") ]] || missing=1; done
  ((missing)) || return 0
  preflight
  local log=$LOG_DIR/$name-$version.log start=$SECONDS cpu
  echo "building $name $version — first run only, this takes a few minutes (log: $log)"
  # Build into a temporary directory and move into place, so an interrupted build leaves no
  # half-written binary that a later run would take for a finished one.
  local tmp
  tmp=$(mktemp -d "$out/.build.XXXXXX")
  # The subshell records its children's CPU time (`times`' second line: user, system) for the
  # report beside the wall time. -buildvcs=false: the consumer modules live in our git
  # checkout; stamping it is pointless and fails on checkouts owned by another user.
  local status=0
  (
    cd "$MODULES/$module" && go build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp/" "$@" >"$log" 2>&1
    built=$?
    times >"$tmp.cpu"
    exit $built
  ) || status=$?
  if ((status)); then
    rm -f "$tmp.cpu"
    rm -rf "$tmp"
    if grep -q -E 'dial tcp|no such host|i/o timeout|connection refused|TLS handshake' "$log"; then
      die "cannot reach the Go module proxy ($(go env GOPROXY)) to download $name $version's sources; it is needed once (full log: $log)"
    fi
    die "building $name $version failed: $(grep -m1 -E 'error|cannot|not found' "$log" || tail -1 "$log") (full log: $log)"
  fi
  mv "$tmp"/* "$out"/ && rmdir "$tmp"
  cpu=$(awk 'END { for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] } printf "%d", s }' "$tmp.cpu")
  rm -f "$tmp.cpu"
  echo "built $name $version in $((SECONDS - start))s (${cpu}s of CPU)"
}

# How many component builds run at once. Each `go build` already compiles packages on every
# core; a second one fills the single-threaded link steps and module downloads of the first
# (measured cold: see the #11 note, docs/development.md).
BUILD_JOBS=${MODELDEPLOY_BUILD_JOBS:-2}

# Runs the build_* functions given, at most BUILD_JOBS at once, in the order given (longest
# first, so the last to finish starts early); fails after all have ended if any failed.
run_builds() {
  local -A name_of=()
  local -a active=()
  local name pid finished failed=0
  reap() {
    finished=
    wait -n -p finished "${active[@]}" || { echo "modeldeploy cluster: ${name_of[$finished]} did not build" >&2; failed=1; }
    for pid in "${!active[@]}"; do [[ ${active[$pid]} == "$finished" ]] && unset 'active[pid]'; done
    active=("${active[@]}")
  }
  for name in "$@"; do
    while ((${#active[@]} >= BUILD_JOBS)); do reap; done
    "build_$name" &
    name_of[$!]=$name
    active+=($!)
  done
  while ((${#active[@]})); do reap; done
  ((failed == 0))
}

build_kubernetes() {
  local v=k8s.io/component-base/version minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  # Stamp the version the way release builds do; unstamped builds report v0.0.0-master, which
  # clients and version skew checks reject.
  local kube_ldflags="-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  local -a packages=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  command -v kubectl >/dev/null || packages+=(k8s.io/kubernetes/cmd/kubectl)
  build kubernetes "$KUBE_VERSION" "$KUBE_BIN" kubernetes "$kube_ldflags" "${packages[@]}"
}

build_etcd() {
  # etcd's main package is the module root go.etcd.io/etcd/server/v3, so `go build` names the
  # binary after its last element before the major version: "server".
  [[ -x $ETCD_BIN/etcd ]] && return 0
  build etcd "$ETCD_VERSION" "$ETCD_BIN" etcd "-s -w" go.etcd.io/etcd/server/v3
  mv "$ETCD_BIN/server" "$ETCD_BIN/etcd"
}

build_kwok() {
  build kwok "$KWOK_VERSION" "$KWOK_BIN" kwok "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
}

build_helm() {
  build helm "$HELM_VERSION" "$HELM_BIN" helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    helm.sh/helm/v3/cmd/helm
}

# Longest first: Kubernetes and KEDA take the longest cold.
PLATFORM=(keda traefik prometheus prometheus_operator metrics_server coredns)
ALL=(kubernetes keda traefik kwok prometheus helm prometheus_operator metrics_server etcd coredns)
# Only the scale-to-zero tests use KEDA, the longest build after Kubernetes: `make test` builds it
# in the background while the other tests run (Makefile).
OPTIONAL=(keda)

# build_set COMPONENT...: builds those components, the platform's module downloads (network-bound,
# about 5 minutes cold) running meanwhile.
build_set() {
  prefetch_platform &
  run_builds "$@"
  wait
}

required() {
  local name optional
  for name in "${ALL[@]}"; do
    for optional in "${OPTIONAL[@]}"; do [[ $name == "$optional" ]] && continue 2; done
    echo "$name"
  done
}

# Downloads the modules of every platform component that is not built yet, all at once
# (`go list -deps` fetches exactly what a build of those packages needs, and compiles nothing).
# A failure here is reported by the build that needs the module.
prefetch_platform() {
  local module tags binary packages
  mkdir -p "$LOG_DIR"
  while read -r module tags binary packages; do
    [[ -x $binary ]] && continue
    # shellcheck disable=SC2086 # several packages
    (cd "$MODULES/$module" && go list -tags "${tags#-}" -deps $packages >/dev/null || true) &
  done >"$LOG_DIR/platform-prefetch.log" 2>&1 <<MODULES
traefik - $TRAEFIK_BIN/traefik github.com/traefik/traefik/v3/cmd/traefik
prometheus-operator - $PROMETHEUS_OPERATOR_BIN/operator github.com/prometheus-operator/prometheus-operator/cmd/operator github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
prometheus $PROMETHEUS_TAGS $PROMETHEUS_BIN/prometheus github.com/prometheus/prometheus/cmd/prometheus
coredns - $COREDNS_BIN/coredns modeldeploy.dev/cluster/coredns
metrics-server - $METRICS_SERVER_BIN/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
keda - $KEDA_BIN/operator github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter
MODULES
  wait
}

# The platform components a production cluster runs next to the model deployments.
build_traefik() {
  build traefik "$TRAEFIK_VERSION" "$TRAEFIK_BIN" traefik \
    "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    github.com/traefik/traefik/v3/cmd/traefik
}

# Static binaries (no cgo) for the ones that run in FROM scratch images (cluster/platform/images.sh).
build_prometheus_operator() {
  CGO_ENABLED=0 build prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" "$PROMETHEUS_OPERATOR_BIN" prometheus-operator \
    "-s -w -X $PROMETHEUS_COMMON.Version=${PROMETHEUS_OPERATOR_VERSION#v} -X $PROMETHEUS_COMMON.Branch=release" \
    github.com/prometheus-operator/prometheus-operator/cmd/operator \
    github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
}

# The web UI's assets are not in the module (they are built with npm), so its pages fail; the
# HTTP API, which the operator, the analysis and the tests use, is complete.
build_prometheus() {
  CGO_ENABLED=0 GOFLAGS=-tags=$PROMETHEUS_TAGS \
    build prometheus "$PROMETHEUS_MODULE_VERSION" "$PROMETHEUS_BIN" prometheus \
    "-s -w -X $PROMETHEUS_COMMON.Version=$PROMETHEUS_VERSION -X $PROMETHEUS_COMMON.Branch=release" \
    github.com/prometheus/prometheus/cmd/prometheus
}

# Our own main package (cluster/modules/coredns/main.go) with the cluster DNS plugins only.
build_coredns() {
  CGO_ENABLED=0 build coredns "$COREDNS_VERSION" "$COREDNS_BIN" coredns "-s -w" modeldeploy.dev/cluster/coredns
}

build_metrics_server() {
  CGO_ENABLED=0 build metrics-server "$METRICS_SERVER_VERSION" "$METRICS_SERVER_BIN" metrics-server \
    "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
}

# KEDA: the operator scales a version between zero and one pod, the adapter serves the external
# metrics API its HorizontalPodAutoscaler reads from one pod up. Static, like KEDA's release
# images (FROM scratch here too).
build_keda() {
  CGO_ENABLED=0 build keda "$KEDA_VERSION" "$KEDA_BIN" keda \
    "-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v} -X github.com/kedacore/keda/v2/version.GitCommit=release" \
    github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter
}

case ${1:-all} in
  all) build_set "${ALL[@]}" ;;
  required) mapfile -t components < <(required) && build_set "${components[@]}" ;;
  keda) build_keda ;;
  paths) print_paths ;;
  platform) run_builds "${PLATFORM[@]}" ;;
  *) die "usage: cluster/build.sh [all|required|keda|platform|paths]" ;;
esac
