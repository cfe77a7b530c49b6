"""Router selection: what the spec asks for against what the cluster has."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy_operator.rollout.routers import (
    GatewayApiRouter,
    ReplicaRatioRouter,
    RouterUnavailableError,
    select_router,
)
from rollout_models import model_deployment

REF = {"gatewayRef": {"name": "web"}}


@pytest.mark.parametrize(
    ("traffic", "crd", "expected"),
    [
        ({}, True, ReplicaRatioRouter),
        ({}, False, ReplicaRatioRouter),
        (REF, True, GatewayApiRouter),
        (REF, False, ReplicaRatioRouter),
        ({**REF, "hostnames": ["a.example.com"]}, False, ReplicaRatioRouter),
        ({"router": "GatewayAPI", **REF}, True, GatewayApiRouter),
        ({"router": "ReplicaRatio"}, True, ReplicaRatioRouter),
        ({"router": "ReplicaRatio"}, False, ReplicaRatioRouter),
        ({**REF, "mirrorPercent": 10}, True, GatewayApiRouter),
    ],
)
def test_selection(traffic: dict[str, Any], crd: bool, expected: type) -> None:
    router = select_router(model_deployment(traffic), crd)
    assert type(router) is expected
    assert router.name.value == ("GatewayAPI" if expected is GatewayApiRouter else "ReplicaRatio")


def test_gateway_api_requested_without_its_crd_is_a_condition_not_a_fallback() -> None:
    with pytest.raises(RouterUnavailableError) as caught:
        select_router(model_deployment({"router": "GatewayAPI", **REF}), False)
    assert caught.value.reason == "GatewayAPINotInstalled"
    assert caught.value.message == str(caught.value)
    assert "httproutes.gateway.networking.k8s.io" in caught.value.message
    assert "set spec.traffic.router to Auto or ReplicaRatio" in caught.value.message


def test_auto_never_drops_a_requested_mirror_silently() -> None:
    with pytest.raises(RouterUnavailableError) as caught:
        select_router(model_deployment({**REF, "mirrorPercent": 10}), False)
    assert caught.value.reason == "MirrorNeedsGatewayAPI"
    assert "mirrorPercent is 10" in caught.value.message


def test_a_mirror_is_refused_on_a_crd_that_would_drop_its_percent() -> None:
    md = model_deployment({**REF, "mirrorPercent": 10})
    with pytest.raises(RouterUnavailableError) as caught:
        select_router(md, True, gateway_api_bundle_version="v1.2.1")
    assert caught.value.reason == "MirrorPercentUnsupported"
    assert "v1.2.1" in caught.value.message
    newer = select_router(md, True, gateway_api_bundle_version="v1.4.1")
    assert isinstance(newer, GatewayApiRouter)
    # Without a mirror an old CRD is fine.
    assert isinstance(
        select_router(model_deployment(REF), True, gateway_api_bundle_version="v1.0.0"),
        GatewayApiRouter,
    )
