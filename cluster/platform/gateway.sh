#!/usr/bin/env bash
# The cluster's Gateway API implementation: Traefik as a host process (its kubernetesgateway
# provider), the GatewayClass `modeldeploy` and the Gateway `web` in modeldeploy-system. The
# Gateway's HTTP listener is Traefik's entry point on 127.0.0.1; its address is in the Gateway's
# status (status.addresses and the listener's port) and in .cluster/platform/gateway.url;
# Traefik's API URL is in the ConfigMap modeldeploy-system/traefik.
# Backends are reached at their pod IPs, which the host routes to (the real node's bridge).
# Traefik's Prometheus metrics are served on an entry point of their own on the real node's
# address, where the platform's Prometheus (a pod) scrapes them (monitoring.sh, job
# traefik-metrics), routers included: a request to a route whose backend has no pod is answered
# 503 by Traefik and counted only by traefik_router_requests_total, the signal that wakes a
# version KEDA scaled to zero.
#
#   cluster/platform/gateway.sh up | down
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=cluster/platform/lib.sh
source "$ROOT/cluster/platform/lib.sh"

GATEWAY_CLASS=modeldeploy
GATEWAY=web
CONTROLLER_NAME=traefik.io/gateway-controller

up() {
  [[ -x $TRAEFIK ]] || die "$TRAEFIK is missing (cluster/build.sh all builds it)"
  mkdir -p "$PLATFORM_DIR"
  local port admin_port metrics_address
  port=$(port_for gateway)
  admin_port=$(port_for traefik-admin)
  metrics_address=$(traefik_metrics_address)
  kubectl_ apply -f - >/dev/null <<MANIFESTS
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $GATEWAY_CLASS
spec:
  controllerName: $CONTROLLER_NAME
---
apiVersion: v1
kind: Namespace
metadata:
  name: $GATEWAY_NAMESPACE
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: $GATEWAY
  namespace: $GATEWAY_NAMESPACE
spec:
  gatewayClassName: $GATEWAY_CLASS
  listeners:
  # Traefik serves a listener on the entry point with the same port.
  - name: http
    protocol: HTTP
    port: $port
    allowedRoutes:
      namespaces: {from: All}
MANIFESTS
  cat >"$PLATFORM_DIR/traefik.yaml" <<CONFIG
entryPoints:
  web:
    address: 127.0.0.1:$port
  traefik:
    address: 127.0.0.1:$admin_port
  metrics:
    address: $metrics_address
ping:
  entryPoint: traefik
metrics:
  prometheus:
    entryPoint: metrics
    # Per router as well as per service and entry point (Traefik's defaults).
    addRoutersLabels: true
# The read-only API (runtime routers and services, weights included) on the loopback entry
# point above; "insecure" means: without a router of its own.
api:
  insecure: true
  # The dashboard's assets are not in the Go module (they are built with npm).
  dashboard: false
providers:
  kubernetesGateway:
    statusAddress:
      ip: 127.0.0.1
log:
  level: INFO
  noColor: true
CONFIG
  spawn traefik "$TRAEFIK" --configFile="$PLATFORM_DIR/traefik.yaml"
  wait_for 60 curl -fsS "http://127.0.0.1:$admin_port/ping" ||
    die "Traefik did not start (log: $PLATFORM_DIR/traefik.log)"
  kubectl_ wait --for=condition=Programmed --timeout=60s -n "$GATEWAY_NAMESPACE" "gateway/$GATEWAY" >/dev/null ||
    die "Traefik did not program the Gateway $GATEWAY_NAMESPACE/$GATEWAY (log: $PLATFORM_DIR/traefik.log)"
  echo "http://127.0.0.1:$port" >"$PLATFORM_DIR/gateway.url"
  # Where tests find Traefik's API, whichever checkout started the cluster.
  kubectl_ create configmap traefik -n "$GATEWAY_NAMESPACE" --from-literal=api-url="http://127.0.0.1:$admin_port" \
    --from-literal=metrics-url="http://$metrics_address/metrics" \
    --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  echo "Gateway $GATEWAY_NAMESPACE/$GATEWAY (Traefik $TRAEFIK_VERSION) at http://127.0.0.1:$port"
}

down() {
  stop traefik
  # Only when the cluster still runs: cluster/down.sh removes the rest with it.
  if "$KUBECTL" get --raw /readyz >/dev/null 2>&1; then
    kubectl_ delete --ignore-not-found -n "$GATEWAY_NAMESPACE" "gateway/$GATEWAY" configmap/traefik >/dev/null
    kubectl_ delete --ignore-not-found "gatewayclass/$GATEWAY_CLASS" >/dev/null
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: cluster/platform/gateway.sh up|down" ;;
esac
