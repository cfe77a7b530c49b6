"""Which version tracks should run and which receive traffic: a pure decision.

Input: the ModelDeployment (spec = what should serve, status = what serves now) and the observed
health of each version's Deployment. Output: the tracks to run and the versions the model Service
selects. The state that must survive an operator restart lives in the status (`stableServing`),
never in memory.

Until the progressive rollout lands, a version change is a safe switch-over: the new version
runs beside the stable one, the model Service keeps pointing at the stable version until every
new replica is ready, then it points at the new version, which becomes stable, and the old
track goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from modeldeploy_operator.api import ModelDeployment, ServingTemplate
from modeldeploy_operator.builders import TrackPlan
from modeldeploy_operator.health import DeploymentHealth

# While a new version comes up, look again this often even without watch events (deadlines).
PROGRESS_RECHECK_SECONDS = 10.0


@dataclass(frozen=True)
class Plan:
    tracks: list[TrackPlan]
    traffic_versions: list[str]
    stable: ServingTemplate | None  # what status.stableServing should say after this pass
    target: ServingTemplate  # what the spec asks for
    in_progress: bool
    requeue_after: float | None

    @property
    def stable_track(self) -> TrackPlan:
        return next(t for t in self.tracks if t.track == "stable")

    @property
    def canary_track(self) -> TrackPlan | None:
        return next((t for t in self.tracks if t.track == "canary"), None)


def serving_template(md: ModelDeployment) -> ServingTemplate:
    return ServingTemplate(model=md.spec.model, server=md.spec.server)


def track_replicas(md: ModelDeployment) -> int | None:
    """None when an autoscaler owns the replica count (the Deployment must not set it)."""
    return None if md.spec.autoscaling is not None else md.spec.replicas


def plan_tracks(md: ModelDeployment, health: dict[str, DeploymentHealth]) -> Plan:
    target = serving_template(md)
    replicas = track_replicas(md)
    current = md.status.stable_serving if md.status is not None else None

    def settled(template: ServingTemplate) -> bool:
        observed = health.get(template.model.version)
        return observed is not None and observed.rolled_out

    if current is None or current.model.version == target.model.version:
        # First deployment, or same version (a server-only change rolls the one Deployment
        # in place with maxUnavailable 0, which is already gap-free).
        track = TrackPlan(track="stable", serving=target, replicas=replicas, weight=100)
        done = settled(target)
        # A first version that never became ready is not "stable": nothing has served yet.
        stable = target if done else current
        return Plan(
            tracks=[track],
            traffic_versions=[target.model.version],
            stable=stable,
            target=target,
            in_progress=not done,
            requeue_after=None if done else PROGRESS_RECHECK_SECONDS,
        )

    # A new version: run both; switch traffic only once every new replica is ready.
    new_ready = settled(target)
    if new_ready:
        return Plan(
            tracks=[TrackPlan(track="stable", serving=target, replicas=replicas, weight=100)],
            traffic_versions=[target.model.version],
            stable=target,
            target=target,
            in_progress=False,
            requeue_after=None,
        )
    return Plan(
        tracks=[
            TrackPlan(track="stable", serving=current, replicas=replicas, weight=100),
            TrackPlan(track="canary", serving=target, replicas=replicas, weight=0),
        ],
        traffic_versions=[current.model.version],
        stable=current,
        target=target,
        in_progress=True,
        requeue_after=PROGRESS_RECHECK_SECONDS,
    )
