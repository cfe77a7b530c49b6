#!/usr/bin/env bash
# Starts the model platform around the local cluster (cluster/up.sh runs it, on a new and on a
# reused cluster alike; every step leaves what already runs alone):
#   - Gateway API: Traefik and the Gateway modeldeploy-system/web     (gateway.sh)
#   - the Prometheus Operator and Prometheus monitoring/modeldeploy   (monitoring.sh)
#   - CoreDNS behind kube-system/kube-dns                             (dns.sh)
#   - metrics-server behind metrics.k8s.io                            (metrics-server.sh)
# The pods run on the real node, from images built here (images.sh). With kwok nodes only, the
# host processes run and the pods are declared but never run.
#
# Environment: MODELDEPLOY_PLATFORM=0 starts none of it (nor does MODELDEPLOY_PLATFORM_CRDS=0:
# the Gateway and the monitoring objects need the CRDs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

[[ ${MODELDEPLOY_PLATFORM:-1} == 0 || ${MODELDEPLOY_PLATFORM_CRDS:-1} == 0 ]] && exit 0
start=$SECONDS
mkdir -p "$PLATFORM_DIR"
if has_real_node; then
  "$ROOT/cluster/platform/images.sh"
  "$ROOT/cluster/node/load-images.sh"
fi
"$ROOT/cluster/platform/gateway.sh" up
"$ROOT/cluster/platform/monitoring.sh" up
"$ROOT/cluster/platform/dns.sh" up
"$ROOT/cluster/platform/metrics-server.sh" up
echo "platform ready in $((SECONDS - start))s"
