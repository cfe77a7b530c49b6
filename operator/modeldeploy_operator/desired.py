"""The desired state of one reconcile pass: every child a ModelDeployment should have, each built
exactly once, from the model, the plan, the traffic router and what the cluster serves. Pure.

The traffic split is decided here once (`traffic_split`); the model Service selects what the
router says for that split; the router adds only its own objects; the scaler (HPA or KEDA) is
chosen once (`builders.scaler`); monitoring objects come last. Children of kinds the cluster does
not serve are left out (their CRDs are optional).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modeldeploy_operator import kinds
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext, desired_children
from modeldeploy_operator.builders.scaler import select_scaler
from modeldeploy_operator.monitoring import desired_monitoring
from modeldeploy_operator.monitoring.keda import ScaleToZero, scale_to_zero
from modeldeploy_operator.rollout.plan import Plan
from modeldeploy_operator.rollout.routers.base import TrafficRouter, TrafficSplit


@dataclass(frozen=True)
class Capabilities:
    """What the cluster offers a pass: the kinds it serves and the operator's defaults."""

    served_kinds: frozenset[str]
    prometheus_url: str
    monitoring_labels: Mapping[str, str]

    def serves(self, kind: kinds.Kind) -> bool:
        return kind.kind in self.served_kinds


@dataclass(frozen=True)
class DesiredState:
    children: list[dict[str, Any]]
    split: TrafficSplit
    monitoring: str  # the sentence for status.monitoring
    scale_to_zero: ScaleToZero


def traffic_split(md: ModelDeployment, plan: Plan) -> TrafficSplit:
    """Where the plan sends requests: a canary gets the step's weight (0 while it warms up, also
    for a plain switch-over), and a mirror only while it has less than all traffic."""
    stable_version = (plan.stable or plan.target).model.version
    canary = plan.canary_track
    if canary is None:
        return TrafficSplit(stable_version)
    weight = plan.rollout.weight or 0
    mirror = md.spec.traffic.mirror_percent if weight < 100 else 0
    return TrafficSplit(stable_version, canary.version, weight, mirror)


def desired_state(
    md: ModelDeployment,
    plan: Plan,
    router: TrafficRouter,
    capabilities: Capabilities,
    ctx: BuildContext,
) -> DesiredState:
    split = traffic_split(md, plan)
    zero = scale_to_zero(md, keda_available=capabilities.serves(kinds.SCALED_OBJECT))
    analysis = md.spec.rollout.analysis
    # The Prometheus the analysis reads holds the version's request counter KEDA scales on.
    prometheus = (analysis.prometheus_url if analysis else None) or capabilities.prometheus_url
    scaler = select_scaler(zero, prometheus)
    monitoring, monitoring_status = desired_monitoring(
        md,
        service_monitor_available=capabilities.serves(kinds.POD_MONITOR),
        rules_available=capabilities.serves(kinds.PROMETHEUS_RULE),
        extra_labels=capabilities.monitoring_labels,
    )
    children = [
        *desired_children(md, plan.tracks, ctx, router.selected_versions(split), scaler),
        *router.route_objects(md, split),
        *monitoring,
    ]
    served = [child for child in children if child["kind"] in capabilities.served_kinds]
    return DesiredState(served, split, monitoring_status, zero)
