"""Picks the traffic router a ModelDeployment asks for, given what the cluster has installed.

- `GatewayAPI`: the HTTPRoute CRD must exist, else `RouterUnavailableError`.
- `ReplicaRatio`: always available.
- `Auto`: GatewayAPI when the HTTPRoute CRD exists and `spec.traffic.gatewayRef` is set, else
  ReplicaRatio — except that asking for shadow traffic (`mirrorPercent` > 0, which only the
  Gateway API can do) without the CRD is an error rather than a silent loss of the mirror.

A mirror on a CRD older than Gateway API v1.3 is refused too: that CRD prunes
`requestMirror.percent`, and the gateway would mirror every request.
"""

from __future__ import annotations

from typing import Final

from modeldeploy_operator import api, kinds
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.rollout.routers.base import TrafficRouter
from modeldeploy_operator.rollout.routers.gateway_api import (
    GatewayApiRouter,
    supports_mirror_percent,
)
from modeldeploy_operator.rollout.routers.replica_ratio import ReplicaRatioRouter

HTTPROUTE_CRD: Final = kinds.HTTP_ROUTE.crd_name


class RouterUnavailableError(Exception):
    """The requested router cannot work in this cluster; `reason` and `message` are ready for a
    status condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def select_router(
    md: ModelDeployment,
    httproute_crd_available: bool,
    *,
    gateway_api_bundle_version: str | None = None,
) -> TrafficRouter:
    """The router for `md`. `gateway_api_bundle_version` is the HTTPRoute CRD's
    `gateway.networking.k8s.io/bundle-version` annotation, when known."""
    traffic = md.spec.traffic
    wanted = traffic.router
    if wanted == api.TrafficRouter.REPLICA_RATIO:
        return ReplicaRatioRouter()
    if wanted == api.TrafficRouter.AUTO and not (
        httproute_crd_available and traffic.gateway_ref is not None
    ):
        if traffic.mirror_percent > 0:
            raise RouterUnavailableError(
                "MirrorNeedsGatewayAPI",
                f"spec.traffic.mirrorPercent is {traffic.mirror_percent} but the Gateway API "
                f"HTTPRoute CRD ({HTTPROUTE_CRD}) is not installed, and only the Gateway API "
                "router can mirror traffic: install the Gateway API CRDs (v1.3 or newer) or set "
                "mirrorPercent to 0",
            )
        return ReplicaRatioRouter()
    if not httproute_crd_available:
        raise RouterUnavailableError(
            "GatewayAPINotInstalled",
            f"spec.traffic.router is GatewayAPI but the HTTPRoute CRD ({HTTPROUTE_CRD}) is not "
            "installed: install the Gateway API CRDs (standard channel, v1.0 or newer) or set "
            "spec.traffic.router to Auto or ReplicaRatio",
        )
    if traffic.gateway_ref is None:  # the API rejects this; kept for hand-built objects
        raise RouterUnavailableError(
            "GatewayRefMissing",
            "spec.traffic.router is GatewayAPI but spec.traffic.gatewayRef is not set",
        )
    if traffic.mirror_percent > 0 and not supports_mirror_percent(gateway_api_bundle_version):
        raise RouterUnavailableError(
            "MirrorPercentUnsupported",
            f"spec.traffic.mirrorPercent needs Gateway API v1.3 or newer (RequestMirror percent); "
            f"the installed HTTPRoute CRD is {gateway_api_bundle_version}, which would mirror "
            "every request: upgrade the Gateway API CRDs or set mirrorPercent to 0",
        )
    return GatewayApiRouter()
