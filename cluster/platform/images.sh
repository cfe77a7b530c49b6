#!/usr/bin/env bash
# Builds the images of the platform's pods (Prometheus, its config reloader, CoreDNS,
# metrics-server) and the platform tests' backend (tests/support/echo): FROM scratch, with a
# static binary, once per version, as OCI archives in the real node's load directory (contract:
# cluster/node/load-images.sh). buildah only copies files and commits, so no container runs and
# no registry is needed.
#
#   cluster/platform/images.sh          build what is missing
#   cluster/platform/images.sh ref echo print the echo image's reference
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"
STORE=$CACHE/images/store

buildah_() { buildah --root "$STORE/root" --runroot "$STORE/run" "$@"; }

# image REF BINARY PATH_IN_IMAGE USER: a FROM scratch image whose entrypoint is the binary.
image() {
  local ref=$1 binary=$2 path=$3 user=$4
  local archive
  archive=$IMAGE_LOAD_DIR/$(tr '/' '_' <<<"${ref%:*}")_${ref##*:}.oci.tar
  [[ -f $archive ]] && return 0
  [[ -x $binary ]] || die "$binary is missing (cluster/build.sh all builds it)"
  # A FROM scratch image has no loader: a dynamically linked binary would not start.
  if file "$binary" | grep -q 'dynamically linked'; then die "$binary is not static"; fi
  mkdir -p "$IMAGE_LOAD_DIR"
  local container
  container=$(buildah_ from scratch)
  buildah_ copy --chmod 0755 "$container" "$binary" "$path" >/dev/null
  buildah_ config --entrypoint "[\"$path\"]" --user "$user" "$container"
  # Straight to an OCI archive: nothing is left in the image store but the build's layers.
  buildah_ commit --quiet --rm "$container" "oci-archive:$archive.tmp:$ref" >/dev/null
  mv "$archive.tmp" "$archive"
  echo "built $ref ($(du -h "$archive" | cut -f1))"
}

# The echo backend is tagged by its source, so an edit builds a new image.
ECHO_SOURCE=$ROOT/tests/support/echo
ECHO_IMAGE=localhost/modeldeploy-echo:$(cat "$ECHO_SOURCE"/go.mod "$ECHO_SOURCE"/*.go | sha256sum | cut -c1-12)

echo_binary() {
  local out=$CACHE/echo/${ECHO_IMAGE##*:}
  if [[ ! -x $out/echo ]]; then
    mkdir -p "$out"
    CGO_ENABLED=0 go build -C "$ECHO_SOURCE" -buildvcs=false -trimpath -ldflags "-s -w" -o "$out/echo" .
  fi
  echo "$out/echo"
}

if [[ ${1:-} == ref ]]; then
  [[ ${2:-} == echo ]] || die "usage: cluster/platform/images.sh ref echo"
  echo "$ECHO_IMAGE"
  exit 0
fi

command -v buildah >/dev/null || die "buildah is missing (apt-get install buildah)"
image "$ECHO_IMAGE" "$(echo_binary)" /echo 65532:65532
# The paths are the ones the upstream images use: the Prometheus Operator sets them as commands.
image "$PROMETHEUS_IMAGE" "$PROMETHEUS" /bin/prometheus 65534:65534
image "$CONFIG_RELOADER_IMAGE" "$PROMETHEUS_CONFIG_RELOADER" /bin/prometheus-config-reloader 65534:65534
image "$COREDNS_IMAGE" "$COREDNS" /coredns 65532:65532
image "$METRICS_SERVER_IMAGE" "$METRICS_SERVER" /metrics-server 65532:65532
