#!/usr/bin/env bash
# Stops the platform's host processes (cluster/down.sh runs it before it removes the cluster).
#
#   cluster/platform/down.sh          stop Traefik, the Prometheus Operator and KEDA's operator
#                                     and metrics adapter
#   cluster/platform/down.sh all      also delete every object cluster/platform/up.sh created,
#                                     for a cluster that keeps running
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

case ${1:-processes} in
  processes)
    stop traefik
    stop prometheus-operator
    stop keda-adapter
    stop keda-operator
    ;;
  all)
    "$ROOT/cluster/platform/keda.sh" down
    "$ROOT/cluster/platform/metrics-server.sh" down
    "$ROOT/cluster/platform/dns.sh" down
    "$ROOT/cluster/platform/monitoring.sh" down
    "$ROOT/cluster/platform/gateway.sh" down
    ;;
  *) die "usage: cluster/platform/down.sh [all]" ;;
esac
