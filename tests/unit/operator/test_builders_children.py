"""desired_children: the whole set of children for a plan, and the plans it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy_operator.api import ModelDeployment, ServingTemplate
from modeldeploy_operator.builders import BuildContext, TrackPlan, desired_children

from tests.unit.operator.factories import UID, MakeMd

AUTOSCALING = {"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70}


def _serving(md: ModelDeployment, version: str) -> ServingTemplate:
    return ServingTemplate(model=md.spec.serving().model.model_copy(update={"version": version}))


def _names(children: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(child["kind"], child["metadata"]["name"]) for child in children]


def test_single_stable_version(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md()
    children = desired_children(md, [TrackPlan("stable", md.spec.serving(), 1, 100)], ctx)
    assert _names(children) == [
        ("Deployment", "iris-v1"),
        ("Service", "iris-v1"),
        ("Service", "iris"),
    ]
    assert children[-1]["spec"]["selector"]["modeldeploy.dev/version"] == "1"


def test_every_child_is_owned_and_namespaced(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md(autoscaling=AUTOSCALING)
    plans = [
        TrackPlan("stable", md.spec.serving(), None, 90),
        TrackPlan("canary", _serving(md, "2"), None, 10),
    ]
    children = desired_children(md, plans, ctx)
    for child in children:
        assert child["metadata"]["namespace"] == "models"
        [owner] = child["metadata"]["ownerReferences"]
        assert owner["uid"] == UID and owner["controller"] and owner["blockOwnerDeletion"]
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modeldeploy"


def test_canary_with_autoscaling(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md(autoscaling=AUTOSCALING)
    plans = [
        TrackPlan("stable", md.spec.serving(), None, 75),
        TrackPlan("canary", _serving(md, "2"), None, 25),
    ]
    children = desired_children(md, plans, ctx)
    assert _names(children) == [
        ("Deployment", "iris-v1"),
        ("Service", "iris-v1"),
        ("HorizontalPodAutoscaler", "iris-v1"),
        ("Deployment", "iris-v2"),
        ("Service", "iris-v2"),
        ("HorizontalPodAutoscaler", "iris-v2"),
        ("Service", "iris"),
    ]
    for child in children:
        if child["kind"] == "Deployment":
            assert "replicas" not in child["spec"]
    assert children[-1]["spec"]["selector"] == {"modeldeploy.dev/model": "iris"}


def test_new_version_waits_at_weight_zero(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md(model={"version": "2"})
    plans = [
        TrackPlan("stable", _serving(md, "1"), 2, 100),
        TrackPlan("canary", md.spec.serving(), 2, 0),
    ]
    model_service = desired_children(md, plans, ctx)[-1]
    assert model_service["spec"]["selector"]["modeldeploy.dev/version"] == "1"


def test_explicit_traffic_versions_win(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md(model={"version": "2"})
    plans = [
        TrackPlan("stable", _serving(md, "1"), 2, 100),
        TrackPlan("canary", md.spec.serving(), 2, 0),
    ]
    model_service = desired_children(md, plans, ctx, traffic_versions=["2"])[-1]
    assert model_service["spec"]["selector"]["modeldeploy.dev/version"] == "2"


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        ([], "at least one track"),
        (
            [("stable", "1", 1, 100), ("stable", "2", 1, 0)],
            "each track may be planned once",
        ),
        (
            [("stable", "1", 1, 100), ("canary", "1", 1, 0)],
            "each version may be planned once",
        ),
        ([("stable", "1", None, 100)], "no replica count and no autoscaling"),
    ],
)
def test_refused_plans(
    make_md: MakeMd,
    ctx: BuildContext,
    plans: list[tuple[Any, str, int | None, int]],
    message: str,
) -> None:
    md = make_md()
    tracks = [TrackPlan(t, _serving(md, v), r, w) for t, v, r, w in plans]
    with pytest.raises(ValueError, match=message):
        desired_children(md, tracks, ctx)


def test_traffic_to_an_unplanned_version_is_refused(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md()
    with pytest.raises(ValueError, match="not planned"):
        desired_children(md, [TrackPlan("stable", md.spec.serving(), 1, 100)], ctx, ["9"])


def test_no_traffic_at_all_is_refused(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md()
    with pytest.raises(ValueError, match="at least one version"):
        desired_children(md, [TrackPlan("stable", md.spec.serving(), 1, 0)], ctx)


@pytest.mark.parametrize(("replicas", "weight"), [(1, -1), (1, 101), (-1, 50)])
def test_track_plan_bounds(make_md: MakeMd, replicas: int, weight: int) -> None:
    with pytest.raises(ValueError):
        TrackPlan("stable", make_md().spec.serving(), replicas, weight)


def test_track_plan_version(make_md: MakeMd) -> None:
    md = make_md(model={"version": "5"})
    assert TrackPlan("stable", md.spec.serving(), 1, 100).version == "5"


def test_the_build_is_pure(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md(autoscaling=AUTOSCALING)
    plans = [TrackPlan("stable", md.spec.serving(), None, 100)]
    before = md.model_dump()
    assert desired_children(md, plans, ctx) == desired_children(md, plans, ctx)
    assert md.model_dump() == before
