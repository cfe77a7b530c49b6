"""What the rollout state machine produces (`Plan`) and what it is told besides the object.

A `Plan` says which versions run with which share of traffic, the rollout part of the status
(`RolloutState`), the Events to post and when to look again. Everything that must survive an
operator restart is in that status, never in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from modeldeploy_operator.api import AnalysisResult, PauseReason, ServingTemplate
from modeldeploy_operator.builders import TrackPlan

# While something is in motion, look again this often even without watch events (deadlines).
RECHECK_SECONDS = 5.0
# The Progressing condition's reason (and the Event's) while Prometheus cannot answer.
ANALYSIS_UNAVAILABLE = "AnalysisUnavailable"
# The Event's reason when Prometheus is back without data for its outage and the step restarts.
ANALYSIS_RESTARTED = "AnalysisRestarted"


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class RolloutState:
    """The rollout part of the status (all None/0 when no rollout is in progress)."""

    canary: ServingTemplate | None = None
    weight: int | None = None
    step: int | None = None
    step_started_at: datetime | None = None
    failed_checks: int = 0
    failed_serving_hash: str | None = None
    last_analysis: AnalysisResult | None = None
    pause: PauseReason | None = None  # who holds the canary at its step, if anyone

    @property
    def paused(self) -> bool:
        return self.pause is not None


@dataclass(frozen=True)
class AnalysisUnavailable:
    """The analysis got no answer from Prometheus (`rollout.analysis.prometheus.AnalysisError`):
    no verdict on the canary, so nothing to count."""

    message: str


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    tracks: list[TrackPlan]
    traffic_versions: list[str]  # what the model Service selects
    stable: ServingTemplate | None  # status.stableServing after this pass
    target: ServingTemplate  # what the spec asks for
    rollout: RolloutState = field(default_factory=RolloutState)
    in_progress: bool = False
    requeue_after: float | None = None
    analysis_due: bool = False
    failure: Failure | None = None  # the latest rollback, while the spec still asks for it
    events: list[Event] = field(default_factory=list)
    request_id: str | None = None  # the user request this pass consumed
    analysis_unavailable: str | None = None  # why the step holds: Prometheus did not answer

    @property
    def canary_track(self) -> TrackPlan | None:
        return next((t for t in self.tracks if t.track == "canary"), None)


@dataclass(frozen=True)
class Routing:
    """What the traffic router needs the plan to know."""

    # ReplicaRatio: the model Service selects every track and replica counts set the split;
    # GatewayAPI: the model Service stays on stable and an HTTPRoute splits by weight.
    split_by_service: bool
    canary_replicas: Callable[[int, int], int]  # (stable replicas, weight) → canary replicas
