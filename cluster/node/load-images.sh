#!/usr/bin/env bash
# Imports into the real node's containerd every image archive it does not have yet.
#
# The contract (any script may hand the node an image this way; images/build.sh and the
# platform scripts do):
#   - every image to load is ONE OCI archive (`podman save --format oci-archive`, or any OCI
#     image layout tarball whose index names the full reference in the manifest's
#     `org.opencontainers.image.ref.name` annotation, as podman writes it) at
#       ${MODELDEPLOY_CACHE:-~/.cache/modeldeploy}/images/load/<name>_<tag>.oci.tar
#     where <name> is the image name with every '/' replaced by '_', e.g.
#       ghcr.io/modeldeploy/modeldeploy-server:0.1.0-0123abcd → ghcr.io_modeldeploy_modeldeploy-server_0.1.0-0123abcd.oci.tar
#   - write it under a temporary name and rename it into place (a half-written archive must
#     never match *.oci.tar);
#   - the node imports every archive it has not imported yet, or that changed since (a tag that
#     moves, like ghcr.io/modeldeploy/modeldeploy-server:0.1.0 for the latest build, is imported
#     again), when it starts and whenever this script runs (cluster/up.sh runs it on a reused
#     cluster too) into containerd's k8s.io namespace;
#   - the kubelet's image GC is off, so an imported image stays; pods must use
#     imagePullPolicy IfNotPresent (the default for any tag but :latest): nothing can be pulled.
#
#   cluster/node/load-images.sh      (needs the node's containerd running)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"
CONTAINERD_SOCKET=$NODE_DIR/containerd/containerd.sock
# What was imported, one stamp per archive, beside containerd's root (which outlives a cluster).
STAMPS=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/node/$INSTANCE/imported

ctr_() { ctr --address "$CONTAINERD_SOCKET" --namespace k8s.io "$@"; }

# The reference an archive file stands for: the name's '_' back to '/', the last '_' before
# the tag back to ':'. Tags have no '_' in this contract's files; names may (docker.io_library_x).
archive_ref() {
  local base=${1##*/}
  base=${base%.oci.tar}
  local tag=${base##*_} name=${base%_*}
  echo "${name//_//}:$tag"
}

[[ -S $CONTAINERD_SOCKET ]] || { echo "modeldeploy node: containerd is not running ($CONTAINERD_SOCKET)" >&2; exit 1; }
shopt -s nullglob
mkdir -p "$STAMPS"
have=$(ctr_ images ls -q)
for archive in "$IMAGE_LOAD_DIR"/*.oci.tar; do
  ref=$(archive_ref "$archive")
  stamp=$STAMPS/${archive##*/}
  seen="$(stat -c '%s %Y' "$archive") $ref"
  grep -qxF "$ref" <<<"$have" && [[ -f $stamp && $(cat "$stamp") == "$seen" ]] && continue
  start=$SECONDS
  # The archive's annotation names the image; --all-platforms: the archive holds just one.
  if ! ctr_ images import --all-platforms "$archive" >/dev/null; then
    echo "modeldeploy node: importing $archive failed" >&2
    exit 1
  fi
  echo "$seen" >"$stamp"
  echo "imported $ref in $((SECONDS - start))s"
done
