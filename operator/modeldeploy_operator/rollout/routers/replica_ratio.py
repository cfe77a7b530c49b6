r"""Replica-ratio router: no mesh, no gateway — traffic follows ready pods.

While a canary has a share between 0 and 100 percent, the model Service `<md>` selects every
pod of the model (`naming.model_selector`), so kube-proxy spreads connections evenly over the
ready pods of both versions and the canary's share is c / (s + c) for c canary and s stable
pods. At weight 0 (warming up) the Service selects the stable version only; at 100 (promotion)
the canary only. The router writes no object of its own besides the model Service, and cannot
mirror traffic (`mirror_percent` is ignored; `factory` refuses specs that ask for a mirror).

Sizing. The stable version is never resized for a weight (its pods serve real traffic, and its
autoscaler owns them); the canary gets the c >= 1 whose share c / (s + c) is nearest the weight
(ties: fewer pods), i.e. c ~ s * w / (100 - w). Achieved share for stable size s:

    stable pods \ weight:  5%   10%   20%   25%   50%   75%   90%
    --------------------------------------------------------------
                      1:  50%   50%   50%   50%   50%   75%   90%
                      2:  33%   33%   33%   33%   50%   75%   90%
                      3:  25%   25%   25%   25%   50%   75%   90%
                      5:  17%   17%   17%   29%   50%   75%   90%
                     10:   9%    9%   23%   23%   50%   75%   90%
                     20:   5%    9%   20%   26%   50%   75%   90%

The limit: one canary pod is the smallest share, 1 / (s + 1). With s = 2 a 10% step is
impossible: the router picks 1 pod, 33%, rather than 0 (a canary without traffic tells analysis
nothing) — `achieved_weight` says what a split really is, for status and events. Weights above
50 multiply pods (90% of s = 20 takes 180 canary pods, capped at `limit`): with this router keep
steps at or below 50; promotion to 100 is a selector switch, not a resize. Shares are per
connection: keep-alive clients stick to one pod, so a handful of long-lived clients can see a
split far from the weight.

Autoscaling. The canary is sized by weight from the stable version's *current* replica count
(what the stable HPA chose, read from its Deployment), never by its own load: an autoscaler
free to resize the canary would move the split every time it scaled. So under this router the
canary's size is pinned — `TrackPlan.replicas = canary_replicas(s, w)` (no canary HPA), or an
HPA with minReplicas = maxReplicas = that — and re-derived whenever the stable count changes
(the operator watches the Deployment). Every pod carries the same per-pod load, so the stable
HPA reacts to the load of both versions and the canary follows it by weight. The stable HPA is
left untouched until promotion, when the canary takes the stable's own autoscaling bounds.
"""

from __future__ import annotations

import math
from typing import Final

from modeldeploy_operator import api
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.rollout.routers.base import (
    Manifest,
    TrafficRouter,
    TrafficSplit,
    check_replicas,
)

REPLICA_LIMIT: Final = api.MAX_REPLICAS


def achieved_weight(stable_replicas: int, canary_replicas: int) -> float:
    """Percent of connections the canary's ready pods receive when both versions are selected."""
    if stable_replicas < 0 or canary_replicas < 0:
        raise ValueError("replica counts must not be negative")
    total = stable_replicas + canary_replicas
    return 0.0 if total == 0 else 100 * canary_replicas / total


def ratio_replicas(stable_replicas: int, weight: int, limit: int = REPLICA_LIMIT) -> int:
    """The canary pod count whose share of all pods is nearest `weight` percent (see above)."""
    check_replicas(stable_replicas, weight)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if weight == 0 or stable_replicas == 0:
        return 1
    if weight == 100:
        return min(stable_replicas, limit)
    exact = stable_replicas * weight / (100 - weight)
    candidates = sorted({max(1, math.floor(exact)), max(1, math.ceil(exact))})
    best = min(
        candidates,
        key=lambda c: (abs(achieved_weight(stable_replicas, c) - weight), c),
    )
    return min(best, limit)


class ReplicaRatioRouter(TrafficRouter):
    """The model Service selects both versions; replica counts approximate the weight."""

    name = api.TrafficRouter.REPLICA_RATIO

    def selected_versions(self, split: TrafficSplit) -> list[str]:
        if split.canary_version is None or split.canary_weight == 0:
            return [split.stable_version]
        if split.canary_weight == 100:
            return [split.canary_version]
        return [split.stable_version, split.canary_version]

    def canary_replicas(self, stable_replicas: int, weight: int) -> int:
        return ratio_replicas(stable_replicas, weight)

    def route_objects(self, md: ModelDeployment, split: TrafficSplit) -> list[Manifest]:
        # No mirror without a gateway. The factory refuses a spec that asks for one
        # (RouterUnavailableError, for a condition); a caller that falls back to this router
        # anyway keeps serving, without the shadow traffic.
        return []
