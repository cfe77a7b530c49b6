"""desired_state: every child of a pass, each built once, from the model, plan, router and the
kinds the cluster serves."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext
from modeldeploy_operator.desired import Capabilities, desired_state, traffic_split
from modeldeploy_operator.health import DeploymentHealth
from modeldeploy_operator.rollout.machine import plan_tracks
from modeldeploy_operator.rollout.plan import Plan, Routing
from modeldeploy_operator.rollout.routers import GatewayApiRouter, ReplicaRatioRouter

from tests.unit.operator.factories import IMAGE, md_body

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CORE = frozenset({"Deployment", "Service", "HorizontalPodAutoscaler"})
EVERYTHING = CORE | {"HTTPRoute", "PodMonitor", "PrometheusRule", "ScaledObject"}
GATEWAY = {"router": "GatewayAPI", "gatewayRef": {"name": "web"}, "mirrorPercent": 5}
CTX = BuildContext(server_image=IMAGE)


def capabilities(served: frozenset[str]) -> Capabilities:
    return Capabilities(served, "http://prometheus:9090", {})


def ready(version: str) -> DeploymentHealth:
    return DeploymentHealth(f"iris-v{version}", 2, 2, 2, 2, 2, True, False)


def canary_at_first_step(**spec: Any) -> tuple[ModelDeployment, Plan]:
    """Version 2 rolling out over stable 1, at its first step (10%)."""
    body = md_body(model={"version": "2"}, replicas=2, rollout={"steps": [10, 50]}, **spec)
    body["status"] = {
        "stableVersion": "1",
        "stableServing": ModelDeployment.model_validate(md_body(replicas=2, **spec))
        .spec.serving()
        .model_dump(mode="json", by_alias=True, exclude_none=True),
        "canaryVersion": "2",
        "currentStep": 0,
        "canaryWeight": 10,
        "stepStartedAt": NOW.isoformat(),
    }
    md = ModelDeployment.model_validate(body)
    routing = Routing(split_by_service=False, canary_replicas=GatewayApiRouter().canary_replicas)
    return md, plan_tracks(md, {"1": ready("1"), "2": ready("2")}, NOW, routing)


def names(children: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((c["kind"], c["metadata"]["name"]) for c in children)


def test_every_child_of_a_canary_pass_is_built_exactly_once() -> None:
    md, plan = canary_at_first_step(traffic=GATEWAY)
    state = desired_state(md, plan, GatewayApiRouter(), capabilities(EVERYTHING), CTX)
    assert names(state.children) == Counter(
        {
            ("Deployment", "iris-v1"): 1, ("Deployment", "iris-v2"): 1,
            ("Service", "iris-v1"): 1, ("Service", "iris-v2"): 1, ("Service", "iris"): 1,
            ("HTTPRoute", "iris"): 1, ("PodMonitor", "iris"): 1, ("PrometheusRule", "iris"): 1,
        }
    )  # fmt: skip
    [service] = [
        c for c in state.children if c["kind"] == "Service" and c["metadata"]["name"] == "iris"
    ]
    assert service["spec"]["selector"] == naming.version_selector("iris", "1")
    [route] = [c for c in state.children if c["kind"] == "HTTPRoute"]
    weights = [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]
    assert weights == [90, 10]


def test_the_split_is_the_plans_step_with_its_mirror() -> None:
    md, plan = canary_at_first_step(traffic=GATEWAY)
    split = traffic_split(md, plan)
    assert (split.stable_version, split.canary_version) == ("1", "2")
    assert (split.canary_weight, split.mirror_percent) == (10, 5)


def test_kinds_the_cluster_does_not_serve_are_left_out() -> None:
    md, plan = canary_at_first_step()
    state = desired_state(md, plan, ReplicaRatioRouter(), capabilities(CORE), CTX)
    assert {c["kind"] for c in state.children} == {"Deployment", "Service"}
    assert state.monitoring == "unavailable: monitoring.coreos.com CRDs not installed"


def test_scale_to_zero_with_keda_builds_scaled_objects_and_no_hpa() -> None:
    autoscaling = {"minReplicas": 0, "maxReplicas": 3, "targetRequestsPerSecond": 5}
    md = ModelDeployment.model_validate(md_body(autoscaling=autoscaling))
    routing = Routing(split_by_service=True, canary_replicas=ReplicaRatioRouter().canary_replicas)
    plan = plan_tracks(md, {}, NOW, routing)

    with_keda = desired_state(md, plan, ReplicaRatioRouter(), capabilities(EVERYTHING), CTX)
    kinds = Counter(c["kind"] for c in with_keda.children)
    assert kinds["ScaledObject"] == 1 and kinds["HorizontalPodAutoscaler"] == 0
    assert with_keda.scale_to_zero.use_keda

    without = desired_state(md, plan, ReplicaRatioRouter(), capabilities(CORE), CTX)
    kinds = Counter(c["kind"] for c in without.children)
    assert kinds["ScaledObject"] == 0 and kinds["HorizontalPodAutoscaler"] == 1
    assert without.scale_to_zero.reason is not None


def test_keda_queries_the_prometheus_the_analysis_names() -> None:
    """docs/monitoring.md: the ScaledObject's Prometheus is spec.rollout.analysis.prometheusUrl,
    else the operator's default (a real KEDA showed the default in place of the spec's)."""
    autoscaling = {"minReplicas": 0, "maxReplicas": 3, "targetRequestsPerSecond": 5}
    routing = Routing(split_by_service=True, canary_replicas=ReplicaRatioRouter().canary_replicas)
    analysis = {"prometheusUrl": "http://10.96.0.99:9090", "successRate": {"min": 99}}
    for rollout, expected in (
        ({"analysis": analysis}, "http://10.96.0.99:9090"),
        ({}, capabilities(EVERYTHING).prometheus_url),
    ):
        md = ModelDeployment.model_validate(md_body(autoscaling=autoscaling, rollout=rollout))
        plan = plan_tracks(md, {}, NOW, routing)
        state = desired_state(md, plan, ReplicaRatioRouter(), capabilities(EVERYTHING), CTX)
        [scaled] = [c for c in state.children if c["kind"] == "ScaledObject"]
        servers = {t["metadata"]["serverAddress"] for t in scaled["spec"]["triggers"]}
        assert servers == {expected}
