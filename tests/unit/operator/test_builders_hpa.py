"""build_hpa: metrics, behaviour, and canary bounds scaled by weight."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import TrackPlan, build_hpa
from modeldeploy_operator.builders.hpa import RPS_METRIC, quantity
from modeldeploy_operator.naming import Track

from tests.unit.operator.factories import UID, MakeMd

AUTOSCALING = {"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70}


def _plan(md: ModelDeployment, track: Track = "stable", weight: int = 100) -> TrackPlan:
    return TrackPlan(track=track, serving=md.spec.serving(), replicas=None, weight=weight)


def _hpa(md: ModelDeployment, track: Track = "stable", weight: int = 100) -> dict[str, Any]:
    hpa = build_hpa(md, _plan(md, track, weight))
    assert hpa is not None
    return hpa


def test_no_hpa_without_autoscaling(make_md: MakeMd) -> None:
    md = make_md()
    assert build_hpa(md, TrackPlan("stable", md.spec.serving(), None, 100)) is None


def test_no_hpa_when_the_plan_fixes_the_size(make_md: MakeMd) -> None:
    md = make_md(autoscaling=AUTOSCALING)
    assert build_hpa(md, TrackPlan("canary", md.spec.serving(), 1, 10)) is None


def test_identity_and_target(make_md: MakeMd) -> None:
    hpa = _hpa(make_md(autoscaling=AUTOSCALING, model={"version": "3"}))
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert hpa["metadata"]["name"] == "iris-v3"
    assert hpa["metadata"]["namespace"] == "models"
    assert hpa["metadata"]["labels"] == naming.labels_for("iris", "3", "stable")
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == UID
    assert hpa["metadata"]["ownerReferences"][0]["controller"] is True
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris-v3",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)


def test_all_metrics(make_md: MakeMd) -> None:
    autoscaling = {
        "maxReplicas": 4,
        "targetCPUUtilizationPercentage": 70,
        "targetMemoryUtilizationPercentage": 80,
        "targetRequestsPerSecond": 50,
    }
    assert _hpa(make_md(autoscaling=autoscaling))["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        },
        {
            "type": "Resource",
            "resource": {
                "name": "memory",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": RPS_METRIC},
                "target": {"type": "AverageValue", "averageValue": "50"},
            },
        },
    ]


def test_only_the_requested_metrics(make_md: MakeMd) -> None:
    md = make_md(autoscaling={"maxReplicas": 4, "targetRequestsPerSecond": 2.5})
    [metric] = _hpa(md)["spec"]["metrics"]
    assert metric["pods"]["target"]["averageValue"] == "2500m"


@pytest.mark.parametrize(
    ("value", "text"), [(50, "50"), (50.0, "50"), (0.5, "500m"), (2.25, "2250m"), (0.0001, "1m")]
)
def test_quantity(value: float, text: str) -> None:
    assert quantity(value) == text


@pytest.mark.parametrize(("window", "seconds"), [("0s", 0), ("15s", 15), ("1.5s", 2), ("1h", 3600)])
def test_the_scale_down_window_is_the_specs(make_md: MakeMd, window: str, seconds: int) -> None:
    md = make_md(autoscaling={**AUTOSCALING, "scaleDownStabilization": window})
    scale_down = _hpa(md)["spec"]["behavior"]["scaleDown"]
    # Whole seconds, as autoscaling/v2 takes them; never shorter than asked.
    assert scale_down["stabilizationWindowSeconds"] == seconds


@pytest.mark.parametrize("window", ["61m", "2h", "5"])
def test_a_scale_down_window_the_hpa_cannot_take_is_refused(make_md: MakeMd, window: str) -> None:
    with pytest.raises(ValueError, match="scaleDownStabilization"):
        make_md(autoscaling={**AUTOSCALING, "scaleDownStabilization": window})


def test_behavior_scales_up_fast_and_down_slowly(make_md: MakeMd) -> None:
    behavior = _hpa(make_md(autoscaling=AUTOSCALING))["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300  # the default, 5m
    up = {p["type"]: p for p in behavior["scaleUp"]["policies"]}
    assert up["Percent"]["value"] >= 100
    [down] = behavior["scaleDown"]["policies"]
    assert down["type"] == "Percent" and down["value"] <= 50


@pytest.mark.parametrize(
    ("weight", "bounds"),
    [(0, (1, 1)), (10, (1, 1)), (25, (1, 3)), (50, (1, 5)), (51, (2, 6)), (100, (2, 10))],
)
def test_canary_bounds_scale_with_weight(
    make_md: MakeMd, weight: int, bounds: tuple[int, int]
) -> None:
    hpa = _hpa(make_md(autoscaling=AUTOSCALING), "canary", weight)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == bounds
    assert hpa["metadata"]["labels"][naming.LABEL_TRACK] == "canary"


def test_stable_bounds_ignore_weight(make_md: MakeMd) -> None:
    hpa = _hpa(make_md(autoscaling=AUTOSCALING), "stable", 75)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)


def test_scale_to_zero_keeps_one_pod(make_md: MakeMd) -> None:
    """An HPA cannot go to zero; KEDA does that (see builders.hpa)."""
    md = make_md(autoscaling={"minReplicas": 0, "maxReplicas": 3, "targetRequestsPerSecond": 1})
    assert _hpa(md)["spec"]["minReplicas"] == 1


def test_behavior_is_not_shared(make_md: MakeMd) -> None:
    md = make_md(autoscaling=AUTOSCALING)
    first = _hpa(md)
    first["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] = 99
    assert _hpa(md)["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
