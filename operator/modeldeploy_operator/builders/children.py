"""Every child a ModelDeployment should have, given the reconciler's plan for its versions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders.context import BuildContext
from modeldeploy_operator.builders.deployment import build_deployment
from modeldeploy_operator.builders.plan import TrackPlan
from modeldeploy_operator.builders.scaler import HPA_SCALER, Scaler
from modeldeploy_operator.builders.service import build_model_service, build_track_service


def _check_plans(md: ModelDeployment, plans: Sequence[TrackPlan]) -> None:
    if not plans:
        raise ValueError("at least one track must be planned")
    for what, counts in (
        ("track", Counter(plan.track for plan in plans)),
        ("version", Counter(plan.version for plan in plans)),
    ):
        repeated = sorted(key for key, count in counts.items() if count > 1)
        if repeated:
            raise ValueError(f"each {what} may be planned once, not {repeated} twice")
    for plan in plans:
        if plan.replicas is None and md.spec.autoscaling is None:
            raise ValueError(f"version {plan.version} has no replica count and no autoscaling")


def desired_children(
    md: ModelDeployment,
    plans: Sequence[TrackPlan],
    ctx: BuildContext,
    traffic_versions: Sequence[str] | None = None,
    scaler: Scaler = HPA_SCALER,
) -> list[dict[str, Any]]:
    """Per planned version a Deployment, a Service and (when autoscaled) its `scaler`'s object;
    then the model Service, selecting `traffic_versions` (default: the versions with a weight
    above 0)."""
    _check_plans(md, plans)
    live = {plan.version for plan in plans}
    selected = (
        list(traffic_versions)
        if traffic_versions is not None
        else [plan.version for plan in plans if plan.weight > 0]
    )
    unknown = sorted(set(selected) - live)
    if unknown:
        raise ValueError(f"traffic versions {unknown} are not planned")
    if len(set(selected)) > 1 and set(selected) != live:
        # The model Service can only select one version or all of them (see builders.service).
        raise ValueError(
            f"the model Service cannot select versions {sorted(set(selected))} but not "
            f"{sorted(live - set(selected))}"
        )
    children: list[dict[str, Any]] = []
    for plan in plans:
        children.append(build_deployment(md, plan, ctx))
        children.append(build_track_service(md, plan))
        sizer = scaler.build(md, plan)
        if sizer is not None:
            children.append(sizer)
    children.append(build_model_service(md, selected))
    return children
