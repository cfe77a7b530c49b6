"""Who owns a version's replica count when it autoscales — one decision, one small interface.

A HorizontalPodAutoscaler by default; a KEDA ScaledObject instead when the model asks to scale
to zero and KEDA is installed (an HPA never goes below one pod, and KEDA refuses a second HPA
on its Deployment). `select_scaler` is the only place that chooses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders.hpa import build_hpa
from modeldeploy_operator.builders.plan import TrackPlan
from modeldeploy_operator.monitoring.keda import ScaleToZero, desired_scaled_object


class Scaler(Protocol):
    def build(self, md: ModelDeployment, plan: TrackPlan) -> dict[str, Any] | None:
        """The object that sizes one version, or None when the plan fixes its size."""


@dataclass(frozen=True)
class HorizontalPodAutoscalerScaler:
    def build(self, md: ModelDeployment, plan: TrackPlan) -> dict[str, Any] | None:
        return build_hpa(md, plan)


@dataclass(frozen=True)
class ScaledObjectScaler:
    prometheus_url: str  # the Prometheus KEDA's request-rate trigger queries

    def build(self, md: ModelDeployment, plan: TrackPlan) -> dict[str, Any] | None:
        return desired_scaled_object(md, plan, self.prometheus_url)


HPA_SCALER: Final = HorizontalPodAutoscalerScaler()


def select_scaler(scale_to_zero: ScaleToZero, prometheus_url: str) -> Scaler:
    if scale_to_zero.use_keda:
        return ScaledObjectScaler(prometheus_url)
    return HPA_SCALER
