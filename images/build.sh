#!/usr/bin/env bash
# Builds the project's images without a Docker engine, from the same Dockerfiles `docker build`
# uses, and leaves each as an OCI archive for the local node to import.
#
#   images/build.sh all             build (or reuse) the base, the server and the operator images
#   images/build.sh ref NAME        print the reference NAME (server|operator) has for the
#                                   current working tree, without building anything
#   images/build.sh sizes           print the size of each current image
#
# How:
# - the base is Debian bookworm made from Debian packages by mmdebstrap (Python, venv, CA
#   certificates; no apt, no docs) and imported into a podman store of the project's own. It
#   stands in for the Dockerfiles' `python:*-slim-bookworm` (no registry is reachable to pull it).
#   The build stages get a second base, the same plus binutils (strip), which the runtime lacks;
# - buildah builds each Dockerfile on it, with the host network and the host's CA bundle (pip
#   reaches PyPI the way the host does) and explicit ulimits (buildah's defaults need
#   CAP_SYS_RESOURCE, which a VM like this one lacks);
# - the project's own packages come from this working tree: the build context is the files the
#   Dockerfile's .dockerignore lets through.
#
# Every image is cached by content: its tag is `<version>-<hash of its inputs>` (base recipe,
# Dockerfile, build arguments and the context's files), so an unchanged tree builds nothing.
# The latest build is also tagged `<version>`, the tag the chart and the examples name, so
# `kubectl apply` of an example runs this tree's code on the local node.
# Output, under ${MODELDEPLOY_CACHE:-~/.cache/modeldeploy}/images/:
#   store/          the podman/buildah store (images, layers)
#   load/           one OCI archive per image for the node (see cluster/node/load-images.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/images
STORE=$CACHE/store
LOAD_DIR=$CACHE/load
LOG_DIR=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/logs
REGISTRY=${IMAGE_REGISTRY:-ghcr.io/modeldeploy}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")
SERVER_EXTRAS=${SERVER_EXTRAS:-serve}
# The host's CA bundle: the one pip is configured with here (see `pip config list`).
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# The base image's recipe; its hash is the base's tag, so changing a line rebuilds it.
# libstdc++6: numpy's and scipy's wheels link it (manylinux counts it as part of the system).
DEBIAN_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates,libstdc++6
# The base of the Dockerfiles' build stages (buildah's --from): the same plus what they build with
# and the runtime never needs (strip).
BUILD_BASE_PACKAGES=$BASE_PACKAGES,binutils
BASE_SOURCES=(
  "deb http://deb.debian.org/debian $DEBIAN_SUITE main"
  "deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main"
  "deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main"
)
# Nothing at run time reads documentation or translations.
BASE_EXCLUDES=(/usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian)
# What python:*-slim sets and the Dockerfiles rely on.
BASE_CHANGES=("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "ENV LANG=C.UTF-8")
# Merged /usr made by mmdebstrap itself: the usrmerge package would pull in all of Perl (50 MB).
BASE_HOOK=/usr/share/mmdebstrap/hooks/merged-usr
# Removed once every package is installed: what only dpkg's maintainer scripts use (Perl) and
# glibc's iconv modules (Python has its own codecs). Nothing in the images runs dpkg.
BASE_REMOVED=(/usr/bin/perl /usr/bin/perl5.36.0 /usr/lib/x86_64-linux-gnu/perl-base /usr/lib/x86_64-linux-gnu/gconv)

die() { echo "modeldeploy images: $*" >&2; exit 1; }

podman_() { podman --root "$STORE/root" --runroot "$STORE/run" "$@"; }
# nice: a build shares the machine with the tests and other builds.
buildah_() { nice buildah --root "$STORE/root" --runroot "$STORE/run" "$@"; }

short_hash() { sha256sum | cut -c1-16; }

# drop_older REF...: removes the store's other tags of the REFs' repository (older builds).
drop_older() {
  local repo=${1%:*}
  podman_ images --format '{{.Repository}}:{{.Tag}}' | grep "^$repo:" | grep -vxF "${@/#/-e}" |
    xargs -r podman --root "$STORE/root" --runroot "$STORE/run" rmi >/dev/null 2>&1 || true
}

# base_packages runtime|build: the Debian packages of that base.
base_packages() {
  case $1 in
    runtime) echo "$BASE_PACKAGES" ;;
    build) echo "$BUILD_BASE_PACKAGES" ;;
    *) die "no base named $1" ;;
  esac
}

# base_ref runtime|build
base_ref() {
  local recipe repository=localhost/modeldeploy-base
  [[ $1 == build ]] && repository=localhost/modeldeploy-build-base
  recipe=$(printf '%s\n' "$DEBIAN_SUITE" "$(base_packages "$1")" "${BASE_SOURCES[@]}" \
    "${BASE_EXCLUDES[@]}" "${BASE_CHANGES[@]}" "$BASE_HOOK" "${BASE_REMOVED[@]}")
  echo "$repository:$DEBIAN_SUITE-$(short_hash <<<"$recipe")"
}

# The build context of an image: the files its .dockerignore admits (`!PATH` and `!DIR/**`).
context_files() {
  local ignore=$ROOT/images/$1.Dockerfile.dockerignore pattern
  sed -n 's/^!//p' "$ignore" | while read -r pattern; do
    pattern=${pattern%/\*\*}
    if [[ -d $ROOT/$pattern ]]; then
      (cd "$ROOT" && find "$pattern" -type f -not -path '*/__pycache__/*' -not -name '*.pyc')
    else
      echo "$pattern"
    fi
  done | LC_ALL=C sort
}

build_args() {
  echo "PYTHON_IMAGE=$(base_ref runtime)"
  [[ $1 == server ]] && echo "EXTRAS=$SERVER_EXTRAS"
  return 0
}

image_ref() {
  local name=$1 key
  [[ -f $ROOT/images/$name.Dockerfile ]] || die "no image named $name (images/$name.Dockerfile)"
  key=$({
    build_args "$name"
    base_ref build
    sha256sum "$ROOT/images/$name.Dockerfile" | cut -d' ' -f1
    context_files "$name" | (cd "$ROOT" && xargs -d '\n' sha256sum)
  } | short_hash)
  echo "$REGISTRY/modeldeploy-$name:$VERSION-$key"
}

# The archive the node imports for a reference (the contract in cluster/node/load-images.sh).
archive_path() {
  local ref=$1
  echo "$LOAD_DIR/$(tr '/' '_' <<<"${ref%:*}")_${ref##*:}.oci.tar"
}

preflight() {
  [[ $(id -u) == 0 ]] || die "building images without a Docker engine needs root (podman/buildah with a store of the project's own)"
  "$ROOT/cluster/apt-install.sh" mmdebstrap podman buildah || die "cannot install mmdebstrap, podman and buildah"
}

# build_base runtime|build
build_base() {
  local ref
  ref=$(base_ref "$1")
  podman_ image exists "$ref" && return 0
  local tarball=$CACHE/base-$1-partial.tar log=$LOG_DIR/image-base-$1.log start=$SECONDS opts=() dir change
  echo "building the Debian $DEBIAN_SUITE $1 base image $ref — first run only, about 2 minutes (log: $log)"
  for dir in "${BASE_EXCLUDES[@]}"; do opts+=("--dpkgopt=path-exclude=$dir/*"); done
  local removed
  printf -v removed ' "$1"%s' "${BASE_REMOVED[@]}"
  nice mmdebstrap --variant=essential --include="$(base_packages "$1")" --hook-dir="$BASE_HOOK" "${opts[@]}" \
    --customize-hook="rm -rf$removed" \
    "$DEBIAN_SUITE" "$tarball" "${BASE_SOURCES[@]}" >"$log" 2>&1 ||
    die "mmdebstrap failed: $(tail -1 "$log") (full log: $log)"
  opts=()
  for change in "${BASE_CHANGES[@]}"; do opts+=(--change "$change"); done
  podman_ import "${opts[@]}" "$tarball" "$ref" >>"$log" 2>&1 ||
    die "podman import failed (log: $log)"
  rm -f "$tarball"
  drop_older "$ref"
  echo "built the $1 base image in $((SECONDS - start))s"
}

build_image() {
  local name=$1 ref archive
  ref=$(image_ref "$name")
  archive=$(archive_path "$ref")
  if [[ -f $archive ]]; then
    echo "$name image up to date: $ref"
    return 0
  fi
  local log=$LOG_DIR/image-$name.log start=$SECONDS args=() arg
  if ! podman_ image exists "$ref"; then
    echo "building the $name image $ref (log: $log)"
    while read -r arg; do args+=(--build-arg "$arg"); done < <(build_args "$name")
    # --layers=false: the whole image is the cache unit; no intermediate layers to keep.
    # nproc/nofile: buildah's defaults (and raising them) need CAP_SYS_RESOURCE.
    (cd "$ROOT" && buildah_ bud --layers=false --network host --from "$(base_ref build)" \
      --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
      --volume "$CA_BUNDLE:$CA_BUNDLE:ro" \
      --ignorefile "images/$name.Dockerfile.dockerignore" \
      -f "images/$name.Dockerfile" "${args[@]}" -t "$ref" .) >"$log" 2>&1 ||
      die "building the $name image failed: $(grep -m1 -iE 'error' "$log" || tail -1 "$log") (full log: $log)"
    echo "built the $name image in $((SECONDS - start))s"
  fi
  # The latest build only: an older build's archives would only be imported for nothing.
  rm -f "$LOAD_DIR/$(tr '/' '_' <<<"${ref%:*}")"_*.oci.tar
  local release=${ref%:*}:$VERSION tagged
  podman_ tag "$ref" "$release"
  drop_older "$ref" "$release"
  for tagged in "$release" "$ref"; do
    archive=$(archive_path "$tagged")
    podman_ save --format oci-archive -o "$archive.tmp" "$tagged" >>"$log" 2>&1 ||
      die "saving the $name image failed (log: $log)"
    mv "$archive.tmp" "$archive"
  done
}

sizes() {
  local name ref
  for name in server operator; do
    ref=$(image_ref "$name")
    if podman_ image exists "$ref"; then
      echo "$name $ref $(podman_ image inspect --format '{{.Size}}' "$ref" | numfmt --to=si)B"
    else
      echo "$name $ref not built"
    fi
  done
}

case ${1:-all} in
  all)
    preflight
    mkdir -p "$STORE" "$LOAD_DIR" "$LOG_DIR"
    # Both at once: mostly downloads and unpacking.
    build_base runtime &
    runtime_pid=$!
    build_base build &
    build_pid=$!
    wait "$runtime_pid" && wait "$build_pid" || die "building the base images failed"
    build_image server
    build_image operator
    ;;
  ref) image_ref "${2:?usage: images/build.sh ref server|operator}" ;;
  sizes) sizes ;;
  *) die "usage: images/build.sh [all|ref NAME|sizes]" ;;
esac
