#!/usr/bin/env bash
# Builds the pod sandbox ("pause") image from Kubernetes' own build/pause/linux/pause.c in the
# k8s.io/kubernetes module the control plane is built from: `gcc -static`, in a FROM scratch
# image. No registry is reachable here, so the node cannot pull registry.k8s.io/pause.
#
#   cluster/node/pause.sh ref       print the image reference
#   cluster/node/pause.sh build     build it (once per Kubernetes version) into the load directory
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"
eval "$("$ROOT/cluster/build.sh" paths)"
STORE=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/images/store
REF=localhost/modeldeploy-pause:$KUBE_VERSION
ARCHIVE=$IMAGE_LOAD_DIR/localhost_modeldeploy-pause_$KUBE_VERSION.oci.tar

die() { echo "modeldeploy node: $*" >&2; exit 1; }
buildah_() { buildah --root "$STORE/root" --runroot "$STORE/run" "$@"; }
podman_() { podman --root "$STORE/root" --runroot "$STORE/run" "$@"; }

build() {
  [[ -f $ARCHIVE ]] && return 0
  command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc libc6-dev)"
  local source work container
  source=$(cd "$ROOT/cluster/modules/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  [[ -f $source ]] || die "no $source in the module cache (cluster/build.sh all downloads it)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  gcc -Os -Wall -Werror -static -DVERSION="$KUBE_VERSION-modeldeploy" -o "$work/pause" "$source"
  strip "$work/pause"
  mkdir -p "$IMAGE_LOAD_DIR"
  container=$(buildah_ from scratch)
  buildah_ copy "$container" "$work/pause" /pause >/dev/null
  buildah_ config --entrypoint '["/pause"]' --user 65535:65535 "$container"
  buildah_ commit --quiet "$container" "$REF" >/dev/null
  buildah_ rm "$container" >/dev/null
  podman_ save --quiet --format oci-archive -o "$ARCHIVE.tmp" "$REF"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  echo "built the pause image $REF"
}

case ${1:-build} in
  ref) echo "$REF" ;;
  build) build ;;
  *) die "usage: cluster/node/pause.sh [ref|build]" ;;
esac
