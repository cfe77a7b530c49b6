"""Scale to zero: when it is asked for, what status says without KEDA or a wake-up query, and the
ScaledObject that replaces a version's HPA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import modeldeploy_operator.monitoring.keda as keda
import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import TrackPlan, build_hpa

from tests.unit.operator.factories import UID, MakeMd
from tests.unit.operator.monitoring.support import check_rules, needs_promtool

PROMETHEUS = "http://prometheus.monitoring:9090"
TO_ZERO = {"minReplicas": 0, "maxReplicas": 8, "targetRequestsPerSecond": 12.5}
WAKE = 'sum(rate(gateway_requests_total{route="iris"}[1m]))'


def _with_wake_query(md: ModelDeployment, query: str = WAKE) -> ModelDeployment:
    meta = md.metadata.model_copy(update={"annotations": {keda.ANNOTATION_WAKE_QUERY: query}})
    return md.model_copy(update={"metadata": meta})


def _plan(md: ModelDeployment, track: naming.Track = "stable", weight: int = 100) -> TrackPlan:
    return TrackPlan(track=track, serving=md.spec.serving(), replicas=None, weight=weight)


def _scaled(md: ModelDeployment, track: naming.Track = "stable", weight: int = 100) -> Any:
    scaled = keda.desired_scaled_object(md, _plan(md, track, weight), PROMETHEUS)
    assert scaled is not None
    return scaled


@pytest.mark.parametrize(
    "spec",
    [{}, {"autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetRequestsPerSecond": 5}}],
)
def test_not_requested(make_md: MakeMd, spec: dict[str, Any]) -> None:
    for available in (True, False):
        decision = keda.scale_to_zero(make_md(**spec), keda_available=available)
        assert decision == keda.ScaleToZero(requested=False, use_keda=False)


def test_requested_without_keda_keeps_the_hpa_and_says_why(make_md: MakeMd) -> None:
    decision = keda.scale_to_zero(make_md(autoscaling=TO_ZERO), keda_available=False)
    assert decision.requested and not decision.use_keda
    assert decision.reason == keda.REASON_UNAVAILABLE
    assert decision.message is not None
    assert "KEDA is not installed" in decision.message and keda.CRD in decision.message


def test_requested_with_keda_but_nothing_to_wake_it(make_md: MakeMd) -> None:
    decision = keda.scale_to_zero(make_md(autoscaling=TO_ZERO), keda_available=True)
    assert decision.requested and decision.use_keda
    assert decision.reason == keda.REASON_NO_WAKE_QUERY
    assert decision.message is not None and keda.ANNOTATION_WAKE_QUERY in decision.message


def test_requested_with_keda_and_a_wake_query(make_md: MakeMd) -> None:
    md = _with_wake_query(make_md(autoscaling=TO_ZERO))
    assert keda.scale_to_zero(md, keda_available=True) == keda.ScaleToZero(
        requested=True, use_keda=True
    )


def test_replaces_the_hpa_of_the_same_name(make_md: MakeMd) -> None:
    md = make_md(autoscaling=TO_ZERO)
    scaled, hpa = _scaled(md), build_hpa(md, _plan(md))
    assert hpa is not None
    assert scaled["apiVersion"] == "keda.sh/v1alpha1" and scaled["kind"] == "ScaledObject"
    assert scaled["metadata"]["name"] == hpa["metadata"]["name"] == naming.track_name("iris", "1")
    assert scaled["metadata"]["labels"] == hpa["metadata"]["labels"]
    assert scaled["spec"]["scaleTargetRef"] == hpa["spec"]["scaleTargetRef"]
    (owner,) = scaled["metadata"]["ownerReferences"]
    assert owner["uid"] == UID and owner["controller"] is True


def test_stable_scales_to_zero_on_its_request_rate(make_md: MakeMd) -> None:
    spec = _scaled(make_md(autoscaling=TO_ZERO))["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 8)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert meta["serverAddress"] == PROMETHEUS
    assert meta["query"] == (
        'sum(rate(modeldeploy_requests_total{namespace="models",model="iris",version="1"}[1m]))'
    )
    # KEDA reads a trigger's number as JSON (scalersconfig.setConfigValueHelper): a Kubernetes
    # quantity such as "12500m" fails the ScaledObject ("unable to unmarshal to field type
    # float64"), so the threshold is a plain decimal.
    assert meta["threshold"] == "12.5"
    assert all(isinstance(value, str) for value in meta.values())


@pytest.mark.parametrize("rps", [0.001, 0.5, 12.5, 50, 1_000_000])
def test_thresholds_are_numbers_keda_parses(make_md: MakeMd, rps: float) -> None:
    md = _with_wake_query(make_md(autoscaling={**TO_ZERO, "targetRequestsPerSecond": rps}))
    for trigger in _scaled(md)["spec"]["triggers"]:
        meta = trigger["metadata"]
        assert json.loads(meta["threshold"]) == pytest.approx(rps)
        assert json.loads(meta["activationThreshold"]) == 0


def test_wake_query_is_a_second_trigger_of_the_stable_only(make_md: MakeMd) -> None:
    md = _with_wake_query(make_md(autoscaling=TO_ZERO))
    stable = _scaled(md)["spec"]["triggers"]
    assert [t["metadata"]["query"] for t in stable][1] == WAKE
    canary = _scaled(md, "canary", 25)["spec"]["triggers"]
    assert WAKE not in [t["metadata"].get("query") for t in canary]


def test_canary_never_scales_to_zero_and_is_sized_by_weight(make_md: MakeMd) -> None:
    md = make_md(autoscaling=TO_ZERO)
    for weight in (1, 10, 50, 100):
        spec = _scaled(md, "canary", weight)["spec"]
        hpa = build_hpa(md, _plan(md, "canary", weight))
        assert hpa is not None
        assert spec["minReplicaCount"] == hpa["spec"]["minReplicas"] >= 1
        assert spec["maxReplicaCount"] == hpa["spec"]["maxReplicas"]


def test_cpu_and_memory_targets_become_triggers(make_md: MakeMd) -> None:
    autoscaling = {
        **TO_ZERO,
        "targetCPUUtilizationPercentage": 70,
        "targetMemoryUtilizationPercentage": 80,
    }
    triggers = _scaled(make_md(autoscaling=autoscaling))["spec"]["triggers"]
    assert [t["type"] for t in triggers] == ["prometheus", "cpu", "memory"]
    assert triggers[1] == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}


def test_none_when_the_plan_fixes_the_size_or_no_autoscaling(make_md: MakeMd) -> None:
    md = make_md(autoscaling=TO_ZERO)
    fixed = TrackPlan(track="stable", serving=md.spec.serving(), replicas=2, weight=100)
    assert keda.desired_scaled_object(md, fixed, PROMETHEUS) is None
    plain = make_md()
    assert keda.desired_scaled_object(plain, _plan(plain), PROMETHEUS) is None


def test_needs_a_request_rate_target(make_md: MakeMd) -> None:
    md = make_md(
        autoscaling={"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}
    )
    with pytest.raises(ValueError, match="targetRequestsPerSecond"):
        keda.desired_scaled_object(md, _plan(md), PROMETHEUS)


@needs_promtool
def test_trigger_query_parses(make_md: MakeMd, tmp_path: Path) -> None:
    md = make_md(model={"version": "2.0-rc_1"}, autoscaling=TO_ZERO)
    query = _scaled(md)["spec"]["triggers"][0]["metadata"]["query"]
    check_rules([{"name": "keda", "rules": [{"record": "keda:query", "expr": query}]}], tmp_path)


# Fields of keda.sh/v1alpha1 ScaledObject (KEDA 2.x CRD): the apiserver prunes any other, so a
# misspelt one would silently change nothing.
SPEC_FIELDS = {
    "advanced",
    "cooldownPeriod",
    "fallback",
    "idleReplicaCount",
    "initialCooldownPeriod",
    "maxReplicaCount",
    "minReplicaCount",
    "pollingInterval",
    "scaleTargetRef",
    "triggers",
}
TRIGGER_FIELDS = {"authenticationRef", "metadata", "metricType", "name", "type"}
HPA_BEHAVIOR_FIELDS = {"scaleUp", "scaleDown"}


def test_only_fields_the_crd_knows(make_md: MakeMd) -> None:
    autoscaling = {**TO_ZERO, "targetCPUUtilizationPercentage": 70}
    spec = _scaled(_with_wake_query(make_md(autoscaling=autoscaling)))["spec"]
    assert set(spec) <= SPEC_FIELDS
    assert set(spec["scaleTargetRef"]) <= {"apiVersion", "kind", "name", "envSourceContainerName"}
    assert set(spec["advanced"]) == {"horizontalPodAutoscalerConfig"}
    assert set(spec["advanced"]["horizontalPodAutoscalerConfig"]) == {"behavior"}
    assert set(spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]) <= (
        HPA_BEHAVIOR_FIELDS
    )
    for trigger in spec["triggers"]:
        assert set(trigger) <= TRIGGER_FIELDS and {"type", "metadata"} <= set(trigger)
        assert all(isinstance(value, str) for value in trigger["metadata"].values())


def test_the_scale_down_window_is_the_specs(make_md: MakeMd) -> None:
    md = _with_wake_query(make_md(autoscaling={**TO_ZERO, "scaleDownStabilization": "45s"}))
    behavior = _scaled(md)["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 45


def test_a_new_version_serves_for_a_cooldown_before_it_may_go_to_zero(make_md: MakeMd) -> None:
    """KEDA scales a ScaledObject that was never active to zero once its initialCooldownPeriod
    has passed since its creation, 0 s by default: a new model went to zero pods at once and
    never became Ready."""
    spec = _scaled(_with_wake_query(make_md(autoscaling=TO_ZERO)))["spec"]
    assert spec["minReplicaCount"] == 0
    assert spec["initialCooldownPeriod"] == spec["cooldownPeriod"] == 300


def test_the_idle_time_before_zero_is_the_specs(make_md: MakeMd) -> None:
    md = _with_wake_query(make_md(autoscaling={**TO_ZERO, "scaleToZeroAfter": "1m30s"}))
    spec = _scaled(md)["spec"]
    assert spec["initialCooldownPeriod"] == spec["cooldownPeriod"] == 90


def test_an_idle_time_below_kedas_polling_is_refused(make_md: MakeMd) -> None:
    with pytest.raises(
        ValueError, match=r"spec\.autoscaling\.scaleToZeroAfter must be between 30s"
    ):
        make_md(autoscaling={**TO_ZERO, "scaleToZeroAfter": "10s"})
