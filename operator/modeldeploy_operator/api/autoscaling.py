"""spec.autoscaling: a HorizontalPodAutoscaler (or, for scale to zero, KEDA) per live version."""

from __future__ import annotations

from typing import Final

from pydantic import ConfigDict, Field, model_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import MAX_REPLICAS
from modeldeploy_operator.api.rules import Rule, cel_rules
from modeldeploy_operator.api.units import check_duration_range, duration_field

AUTOSCALING_BOUNDS_RULE: Final = Rule(
    "self.minReplicas <= self.maxReplicas",
    "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
    field_path=".minReplicas",
)
AUTOSCALING_TARGET_RULE: Final = Rule(
    "has(self.targetCPUUtilizationPercentage) || has(self.targetMemoryUtilizationPercentage)"
    " || has(self.targetRequestsPerSecond)",
    "spec.autoscaling needs at least one target: targetCPUUtilizationPercentage, "
    "targetMemoryUtilizationPercentage or targetRequestsPerSecond",
)
# The autoscaling/v2 API's own bound on a stabilization window.
MAX_STABILIZATION: Final = "1h"
SCALE_DOWN_STABILIZATION_PATH: Final = "spec.autoscaling.scaleDownStabilization"
SCALE_TO_ZERO_AFTER_PATH: Final = "spec.autoscaling.scaleToZeroAfter"
# Below KEDA's polling of the trigger (15 s) a version would flap between zero and one pod.
MIN_SCALE_TO_ZERO_AFTER: Final = "30s"
SCALE_TO_ZERO_RULE: Final = Rule(
    "self.minReplicas > 0 || has(self.targetRequestsPerSecond)",
    "spec.autoscaling.minReplicas 0 (scale to zero) needs spec.autoscaling."
    "targetRequestsPerSecond: CPU and memory cannot wake a model that has no pods",
    field_path=".minReplicas",
)


class AutoscalingSpec(SpecModel):
    """Autoscaling of every live version by a HorizontalPodAutoscaler (autoscaling/v2).

    While set, the autoscaler owns the replica count and spec.replicas is not used. During a
    canary rollout the canary gets its own autoscaler with these bounds scaled by its weight.
    """

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            AUTOSCALING_BOUNDS_RULE, AUTOSCALING_TARGET_RULE, SCALE_TO_ZERO_RULE
        )
    )

    min_replicas: int = Field(
        default=1,
        description="Fewest pods per version. 0 asks for scale to zero, which needs KEDA and "
        "targetRequestsPerSecond; without KEDA the operator keeps one pod and says so in status.",
        ge=0,
        le=MAX_REPLICAS,
    )
    max_replicas: int = Field(description="Most pods per version.", ge=1, le=MAX_REPLICAS)
    target_cpu_utilization_percentage: int | None = Field(
        default=None,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU use the autoscaler aims for, in percent of the CPU request "
        "(may exceed 100 when limits are above requests).",
        ge=1,
        le=1000,
    )
    target_memory_utilization_percentage: int | None = Field(
        default=None,
        alias="targetMemoryUtilizationPercentage",
        description="Average memory use the autoscaler aims for, in percent of the memory request.",
        ge=1,
        le=1000,
    )
    target_requests_per_second: float | None = Field(
        default=None,
        description="Requests per second per pod the autoscaler aims for (a Pods metric "
        "modeldeploy_requests_per_second served by prometheus-adapter).",
        gt=0,
        le=1_000_000,
    )

    scale_down_stabilization: str = duration_field(
        "5m",
        description="How long the load must stay low before pods are removed (the autoscaler's "
        "scale-down stabilization window): long enough to ride out a momentary dip, since a "
        "model pod is slow to bring back; shorter to follow the load closely.",
        path=SCALE_DOWN_STABILIZATION_PATH,
        minimum="0s",
        maximum=MAX_STABILIZATION,
    )

    scale_to_zero_after: str = duration_field(
        "5m",
        description="With minReplicas 0: how long a version must go without requests before "
        "it goes from one pod to zero, and how long a new version serves before it may (KEDA's "
        "cooldownPeriod and initialCooldownPeriod). The next request after that waits for a "
        "pod to start and load the model.",
        path=SCALE_TO_ZERO_AFTER_PATH,
        minimum=MIN_SCALE_TO_ZERO_AFTER,
    )

    @model_validator(mode="after")
    def _rules(self) -> AutoscalingSpec:
        check_duration_range(
            self.scale_down_stabilization, SCALE_DOWN_STABILIZATION_PATH, "0s", MAX_STABILIZATION
        )
        check_duration_range(
            self.scale_to_zero_after, SCALE_TO_ZERO_AFTER_PATH, MIN_SCALE_TO_ZERO_AFTER
        )
        AUTOSCALING_BOUNDS_RULE.require(self.min_replicas <= self.max_replicas)
        AUTOSCALING_TARGET_RULE.require(
            self.target_cpu_utilization_percentage is not None
            or self.target_memory_utilization_percentage is not None
            or self.target_requests_per_second is not None
        )
        SCALE_TO_ZERO_RULE.require(
            self.min_replicas > 0 or self.target_requests_per_second is not None
        )
        return self
