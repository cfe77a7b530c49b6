"""The HorizontalPodAutoscaler (autoscaling/v2) of one live version.

Metrics: CPU and memory utilisation (Resource metrics, relative to the container's requests)
and requests per second per pod as the Pods metric `modeldeploy_requests_per_second`, which the
custom metrics API serves once prometheus-adapter has a rule such as:

    rules:
    - seriesQuery: 'modeldeploy_requests_total{namespace!="",pod!=""}'
      resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
      name: {matches: "^modeldeploy_requests_total$", as: "modeldeploy_requests_per_second"}
      metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'

A canary's bounds are the spec's scaled by its traffic weight (rounded up, at least 1), so it
neither hoards capacity at 10% nor starves at 50%; the stable's bounds are left alone until
promotion. An HPA cannot go below one pod; scale to zero (minReplicas 0) is KEDA's job.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Final

from modeldeploy_operator import naming
from modeldeploy_operator.api import AutoscalingSpec, ModelDeployment, parse_duration
from modeldeploy_operator.builders.meta import child_metadata
from modeldeploy_operator.builders.plan import TrackPlan

RPS_METRIC: Final = "modeldeploy_requests_per_second"


def behavior(autoscaling: AutoscalingSpec) -> dict[str, Any]:
    """Scale up fast (a traffic spike hurts now); scale down after the spec's stabilization
    window, at most half the pods a minute (a dip is often momentary, and a model pod is slow to
    bring back)."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15},
                {"type": "Pods", "value": 4, "periodSeconds": 15},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": math.ceil(
                parse_duration(autoscaling.scale_down_stabilization)
            ),
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
    }


def replica_bounds(autoscaling: AutoscalingSpec, plan: TrackPlan) -> tuple[int, int]:
    """(minReplicas, maxReplicas) for a track's HPA."""
    low, high = autoscaling.min_replicas, autoscaling.max_replicas
    if plan.track == "canary":
        low = math.ceil(low * plan.weight / 100)
        high = math.ceil(high * plan.weight / 100)
    high = max(1, high)
    return min(max(1, low), high), high


def quantity(value: float) -> str:
    """A float as a Kubernetes quantity: whole numbers plain, fractions in milli-units."""
    exact = Decimal(str(value))
    if exact == exact.to_integral_value():
        return str(int(exact))
    return f"{math.ceil(exact * 1000)}m"


def _metrics(autoscaling: AutoscalingSpec) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = []
    for resource, target in (
        ("cpu", autoscaling.target_cpu_utilization_percentage),
        ("memory", autoscaling.target_memory_utilization_percentage),
    ):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": resource,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            )
    if autoscaling.target_requests_per_second is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": RPS_METRIC},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": quantity(autoscaling.target_requests_per_second),
                    },
                },
            }
        )
    return metrics


def build_hpa(md: ModelDeployment, plan: TrackPlan) -> dict[str, Any] | None:
    """The HPA of one version, or None when autoscaling is off or the plan fixes the size."""
    autoscaling = md.spec.autoscaling
    if autoscaling is None or plan.replicas is not None:
        return None
    name, version = md.metadata.name, plan.version
    track = naming.track_name(name, version)
    low, high = replica_bounds(autoscaling, plan)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(md, track, naming.labels_for(name, version, plan.track)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": track},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": _metrics(autoscaling),
            "behavior": behavior(autoscaling),
        },
    }
