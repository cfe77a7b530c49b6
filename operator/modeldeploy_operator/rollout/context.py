"""What one pass of the rollout state machine reads, fixed for the pass: `RolloutContext`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modeldeploy_operator.api import (
    AnalysisResult,
    ModelDeployment,
    RolloutSpec,
    ServingTemplate,
    parse_duration,
)
from modeldeploy_operator.health import DeploymentHealth
from modeldeploy_operator.rollout.analysis.verdict import Outcome
from modeldeploy_operator.rollout.plan import AnalysisUnavailable, Routing
from modeldeploy_operator.rollout.requests import Request

# The verdict of an analysis the reconciler ran because the previous plan asked for one, or why
# there is none.
AnalysisAnswer = tuple[Outcome, AnalysisResult] | AnalysisUnavailable


@dataclass(frozen=True)
class RolloutContext:
    """A rollout from `stable` towards a different `target`, as one pass sees it.

    `health` is each version's observed Deployment health; `analysis` the answer to an analysis
    the previous plan asked for; `request` an unconsumed (id, verb) from `kubectl modeldeploy`.
    """

    md: ModelDeployment
    health: Mapping[str, DeploymentHealth]
    now: datetime
    routing: Routing
    stable: ServingTemplate
    target: ServingTemplate
    replicas: int | None  # per track; None when an autoscaler owns the count
    analysis: AnalysisAnswer | None = None
    request: tuple[str, Request] | None = None

    @property
    def spec(self) -> RolloutSpec:
        return self.md.spec.rollout

    @property
    def deadline(self) -> float:
        """spec.rollout.progressDeadline in seconds."""
        return parse_duration(self.spec.progress_deadline)

    @property
    def interval(self) -> float:
        """spec.rollout.stepInterval in seconds."""
        return parse_duration(self.spec.step_interval)

    @property
    def target_health(self) -> DeploymentHealth | None:
        return self.health.get(self.target.model.version)

    def target_settled(self) -> bool:
        """Every replica of the target version is updated and ready."""
        observed = self.target_health
        return observed is not None and observed.rolled_out

    def elapsed_since(self, moment: datetime | None) -> float:
        """Seconds from `moment` (now, when unknown) to this pass."""
        return (self.now - (moment or self.now)).total_seconds()
