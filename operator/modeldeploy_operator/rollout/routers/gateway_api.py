"""Gateway API router: one HTTPRoute `<md>` with weighted backends, attached to a Gateway.

The route (`gateway.networking.k8s.io/v1`, GA since Gateway API v1.0) attaches to
`spec.traffic.gatewayRef` (its namespace and listener `sectionName` when given), matches
`spec.traffic.hostnames` (absent: the listeners' hostnames) and has exactly one rule, matching
only the paths clients of KServe's V1 and V2 protocols call (`contract.CLIENT_EXACT_PATHS`,
`contract.CLIENT_PATH_PREFIXES`; the gateway answers 404 for the rest, `/metrics` included),
whose `backendRefs` are the per-version Services on port 80. Weights are always
written as explicit integers, 100/0 included: an unweighted backend defaults to weight 1, so two
unweighted backends would split 50/50. The HTTPRoute is the ModelDeployment's own child, so the
operator writes the whole object — it never edits rules of routes it does not own.

Shadow traffic: `mirrorPercent` > 0 adds a rule-level `RequestMirror` filter copying that
percent of the rule's requests to the canary Service while it has a canary and less than all
traffic; mirrored responses are discarded by the gateway, but the canary's metrics count them,
so analysis has data even at weight 0. `percent` is standard from Gateway API v1.3; an older CRD
would prune it and mirror *every* request, which `supports_mirror_percent` lets the factory
refuse.

The model Service `<md>` selects only the stable version (the canary at promotion): in-cluster
callers that bypass the gateway keep getting stable answers, never an unweighted split.
Canary pods are sized for their share: ceil(stable * weight / 100), at least 1.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from modeldeploy_serving.contract import CLIENT_EXACT_PATHS, CLIENT_PATH_PREFIXES

from modeldeploy_operator import api, kinds, naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders.meta import child_metadata
from modeldeploy_operator.builders.service import SERVICE_PORT
from modeldeploy_operator.rollout.routers.base import (
    Manifest,
    TrafficRouter,
    TrafficSplit,
    check_replicas,
)

GATEWAY_GROUP: Final = kinds.HTTP_ROUTE.group
HTTPROUTE_API_VERSION: Final = kinds.HTTP_ROUTE.api_version
HTTPROUTE_KIND: Final = kinds.HTTP_ROUTE.kind
# The CRD's `gateway.networking.k8s.io/bundle-version` annotation from which RequestMirror has
# `percent`.
MIRROR_PERCENT_SINCE: Final = (1, 3)
BUNDLE_VERSION_ANNOTATION: Final = f"{GATEWAY_GROUP}/bundle-version"
_BUNDLE_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def supports_mirror_percent(bundle_version: str | None) -> bool:
    """Whether an HTTPRoute CRD of this bundle version keeps `requestMirror.percent`.

    Unknown (None or unparseable) counts as supported: the standard channel has had it since
    v1.3 and the annotation is only missing on hand-made CRDs.
    """
    if bundle_version is None:
        return True
    match = _BUNDLE_VERSION.match(bundle_version.strip())
    if match is None:
        return True
    return (int(match[1]), int(match[2])) >= MIRROR_PERCENT_SINCE


def client_matches() -> list[dict[str, Any]]:
    """What a client may reach through the Gateway, in the route's own terms."""
    return [{"path": {"type": "Exact", "value": path}} for path in CLIENT_EXACT_PATHS] + [
        {"path": {"type": "PathPrefix", "value": prefix}} for prefix in CLIENT_PATH_PREFIXES
    ]


def _service_ref(md: ModelDeployment, version: str) -> dict[str, Any]:
    # group and kind are the API's defaults, written out so that what is applied equals what
    # the apiserver stores.
    return {
        "group": "",
        "kind": "Service",
        "name": naming.track_name(md.metadata.name, version),
        "port": SERVICE_PORT,
    }


def build_httproute(md: ModelDeployment, split: TrafficSplit) -> Manifest:
    """The HTTPRoute `<md>` for this split."""
    stable_version, canary_version = split.stable_version, split.canary_version
    canary_weight, mirror_percent = split.canary_weight, split.mirror_percent
    traffic = md.spec.traffic
    if traffic.gateway_ref is None:
        raise ValueError("the Gateway API router needs spec.traffic.gatewayRef")
    parent: dict[str, Any] = {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "name": traffic.gateway_ref.name,
    }
    if traffic.gateway_ref.namespace is not None:
        parent["namespace"] = traffic.gateway_ref.namespace
    if traffic.gateway_ref.section_name is not None:
        parent["sectionName"] = traffic.gateway_ref.section_name

    backends = [{**_service_ref(md, stable_version), "weight": 100 - canary_weight}]
    rule: dict[str, Any] = {"matches": client_matches()}
    if canary_version is not None:
        backends.append({**_service_ref(md, canary_version), "weight": canary_weight})
        if mirror_percent > 0 and canary_weight < 100:
            rule["filters"] = [
                {
                    "type": "RequestMirror",
                    "requestMirror": {
                        "backendRef": _service_ref(md, canary_version),
                        "percent": mirror_percent,
                    },
                }
            ]
    rule["backendRefs"] = backends

    spec: dict[str, Any] = {"parentRefs": [parent], "rules": [rule]}
    if traffic.hostnames:
        spec["hostnames"] = list(traffic.hostnames)
    return {
        "apiVersion": HTTPROUTE_API_VERSION,
        "kind": HTTPROUTE_KIND,
        "metadata": child_metadata(
            md, naming.model_service_name(md.metadata.name), naming.model_labels(md.metadata.name)
        ),
        "spec": spec,
    }


class GatewayApiRouter(TrafficRouter):
    """Weighted HTTPRoute backends; the model Service stays on one version."""

    name = api.TrafficRouter.GATEWAY_API

    def selected_versions(self, split: TrafficSplit) -> list[str]:
        if split.canary_version is not None and split.canary_weight == 100:
            return [split.canary_version]
        return [split.stable_version]

    def canary_replicas(self, stable_replicas: int, weight: int) -> int:
        check_replicas(stable_replicas, weight)
        return max(1, math.ceil(stable_replicas * weight / 100))

    def route_objects(self, md: ModelDeployment, split: TrafficSplit) -> list[Manifest]:
        return [build_httproute(md, split)]
