"""Gateway API router: the HTTPRoute it writes and the model Service beside it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modeldeploy_operator import naming
from modeldeploy_operator.builders.service import build_model_service
from modeldeploy_operator.rollout.routers import GatewayApiRouter, TrafficSplit
from modeldeploy_operator.rollout.routers.gateway_api import supports_mirror_percent
from rollout_models import model_deployment

GATEWAY = {"gatewayRef": {"name": "web", "namespace": "gateways", "sectionName": "https"}}
MD = model_deployment({**GATEWAY, "hostnames": ["iris.example.com"]})
router = GatewayApiRouter()


def route(md: Any = MD, stable: str = "1", canary: str | None = "2", weight: int = 10,
          mirror: int = 0) -> dict[str, Any]:  # fmt: skip
    (httproute,) = router.route_objects(md, TrafficSplit(stable, canary, weight, mirror))
    return httproute


def backends(httproute: dict[str, Any]) -> list[tuple[str, int]]:
    (rule,) = httproute["spec"]["rules"]
    return [(b["name"], b["weight"]) for b in rule["backendRefs"]]


def test_the_route_is_an_owned_child_attached_to_the_gateway() -> None:
    r = route()
    assert r["apiVersion"] == "gateway.networking.k8s.io/v1" and r["kind"] == "HTTPRoute"
    assert r["metadata"]["name"] == "iris" and r["metadata"]["namespace"] == "prod"
    assert r["metadata"]["labels"] == naming.model_labels("iris")
    (owner,) = r["metadata"]["ownerReferences"]
    assert owner["uid"] == "0b8e-uid" and owner["controller"] is True
    assert r["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "web",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    assert r["spec"]["hostnames"] == ["iris.example.com"]


def test_the_route_matches_only_the_inference_and_metadata_paths_never_metrics() -> None:
    """The scrape endpoint (the artifact's digest, class counts, drift) is for the cluster's
    Prometheus; through the Gateway a client reaches KServe's V1 and V2 paths only."""
    for canary, weight, mirror in ((None, 0, 0), ("2", 10, 20), ("2", 100, 0)):
        (rule,) = route(canary=canary, weight=weight, mirror=mirror)["spec"]["rules"]
        assert rule["matches"] == [
            {"path": {"type": "Exact", "value": "/"}},
            {"path": {"type": "Exact", "value": "/v2"}},
            {"path": {"type": "Exact", "value": "/v2/"}},
            {"path": {"type": "PathPrefix", "value": "/v1/models"}},
            {"path": {"type": "PathPrefix", "value": "/v2/health"}},
            {"path": {"type": "PathPrefix", "value": "/v2/models"}},
        ]


def test_backends_are_the_version_services_on_port_80_with_explicit_weights() -> None:
    (rule,) = route(weight=10)["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "iris-v1", "port": 80, "weight": 90},
        {"group": "", "kind": "Service", "name": "iris-v2", "port": 80, "weight": 10},
    ]


def test_weights_are_written_at_the_extremes_too() -> None:
    assert backends(route(weight=0)) == [("iris-v1", 100), ("iris-v2", 0)]
    assert backends(route(weight=100)) == [("iris-v1", 0), ("iris-v2", 100)]
    assert backends(route(canary=None, weight=0)) == [("iris-v1", 100)]


@given(st.integers(min_value=0, max_value=100))
def test_weights_are_integers_that_add_up_to_100(weight: int) -> None:
    pairs = backends(route(weight=weight))
    assert all(isinstance(w, int) for _, w in pairs)
    assert sum(w for _, w in pairs) == 100
    assert dict(pairs)["iris-v2"] == weight


def test_backend_names_follow_the_version_slug() -> None:
    assert backends(route(stable="1.0", canary="1.1", weight=25)) == [
        (naming.track_name("iris", "1.0"), 75),
        (naming.track_name("iris", "1.1"), 25),
    ]


def test_mirror_copies_a_percent_of_requests_to_the_canary() -> None:
    for weight in (0, 25):
        (rule,) = route(weight=weight, mirror=20)["spec"]["rules"]
        assert rule["filters"] == [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"group": "", "kind": "Service", "name": "iris-v2", "port": 80},
                    "percent": 20,
                },
            }
        ]


def test_no_mirror_without_a_canary_or_once_it_has_all_traffic() -> None:
    for canary, weight, mirror in ((None, 0, 20), ("2", 100, 20), ("2", 10, 0)):
        (rule,) = route(canary=canary, weight=weight, mirror=mirror)["spec"]["rules"]
        assert "filters" not in rule


def test_optional_gateway_fields_are_left_out() -> None:
    md = model_deployment({"gatewayRef": {"name": "web"}})
    r = route(md)
    assert r["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "web"}
    ]
    assert "hostnames" not in r["spec"]


def test_a_route_needs_a_gateway() -> None:
    with pytest.raises(ValueError, match="gatewayRef"):
        route(model_deployment())


@pytest.mark.parametrize(
    ("canary", "weight", "selected"),
    [(None, 0, ["1"]), ("2", 0, ["1"]), ("2", 50, ["1"]), ("2", 100, ["2"])],
)
def test_the_model_service_stays_on_one_version(
    canary: str | None, weight: int, selected: list[str]
) -> None:
    split = TrafficSplit("1", canary, weight)
    assert router.selected_versions(split) == selected
    service = build_model_service(MD, router.selected_versions(split))
    assert service["spec"]["selector"] == naming.version_selector("iris", selected[0])
    assert [o["kind"] for o in router.route_objects(MD, split)] == ["HTTPRoute"]


@pytest.mark.parametrize(
    ("stable", "weight", "canary"),
    [(10, 10, 1), (10, 25, 3), (4, 50, 2), (3, 1, 1), (0, 50, 1), (5, 0, 1), (5, 100, 5)],
)
def test_canary_pods_are_sized_for_their_share(stable: int, weight: int, canary: int) -> None:
    assert router.canary_replicas(stable, weight) == canary


@pytest.mark.parametrize(("stable", "weight"), [(-1, 10), (2, 101), (2, -1)])
def test_impossible_sizes_are_refused(stable: int, weight: int) -> None:
    with pytest.raises(ValueError):
        router.canary_replicas(stable, weight)


@pytest.mark.parametrize(
    ("stable", "canary", "weight", "mirror", "error"),
    [
        ("1", "2", 101, 0, "weight must be within"),
        ("1", "2", 10, -1, "mirror percent"),
        ("1", None, 10, 0, "without a canary"),
        ("1", "1", 10, 0, "both stable and canary"),
    ],
)
def test_impossible_splits_are_refused(
    stable: str, canary: str | None, weight: int, mirror: int, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        TrafficSplit(stable, canary, weight, mirror)


@pytest.mark.parametrize(
    ("bundle", "supported"),
    [("v1.2.1", False), ("v1.0.0", False), ("v1.3.0", True), ("v1.4.1", True), ("v2.0", True),
     (None, True), ("main", True)],
)  # fmt: skip
def test_mirror_percent_needs_gateway_api_1_3(bundle: str | None, supported: bool) -> None:
    assert supports_mirror_percent(bundle) is supported
