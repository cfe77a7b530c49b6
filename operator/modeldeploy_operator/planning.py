"""The rollout state machine: which versions run, with how much traffic, and what happens next.

Pure: (ModelDeployment spec + status, observed health, clock, latest analysis verdict, user
request) → a `Plan`. Everything that must survive an operator restart is in the status the plan
produces (`stableServing`, `canaryServing`, `currentStep`, `stepStartedAt`, `failedChecks`,
`failedServingHash`, `lastRequestId`), never in memory, so a restarted operator continues exactly
where it was: a step is only advanced by writing the new step into the status, and a rollback by
writing the failed template's fingerprint.

A rollout starts when `spec.model.version` differs from the stable version:
  warming  — the canary runs beside stable with no traffic until every canary replica is ready
             (or the progress deadline passes → rollback);
  step i   — the canary gets `steps[i]` percent; after `stepInterval` the analysis runs (if any):
             pass → next step, or promotion after the last; fail → a failed check, rollback at
             `maxFailedChecks`; no data → per `noData` (Hold waits up to the progress deadline);
             Prometheus unreachable → no verdict: the step holds (condition and Event say why)
             and asks again each interval, up to the progress deadline;
  promoted — the canary becomes stable, the old stable goes;
  rolled back — 100% stable at once, the canary goes, phase Failed until the spec changes.
Setting the version back to the stable one aborts at once with no analysis; a newer version
arriving mid-rollout restarts from stable towards it. `strategy: Immediate` skips the steps.
A server-only change (same version) rolls the one Deployment in place (maxUnavailable 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from modeldeploy_operator.api import (
    AnalysisResult,
    ModelDeployment,
    RolloutStrategy,
    ServingTemplate,
    parse_duration,
)
from modeldeploy_operator.builders import TrackPlan
from modeldeploy_operator.health import DeploymentHealth

Outcome = Literal["pass", "fail", "hold"]
Request = Literal["promote", "abort", "pause", "resume"]
PAUSED_BY_REQUEST = "PausedByRequest"
# The Progressing condition's reason (and the Event's) while Prometheus cannot answer.
ANALYSIS_UNAVAILABLE = "AnalysisUnavailable"
# While something is in motion, look again this often even without watch events (deadlines).
RECHECK_SECONDS = 5.0


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
    paused: bool = False


@dataclass(frozen=True)
class AnalysisUnavailable:
    """The analysis got no answer from Prometheus (`rollout.analysis.AnalysisError`): no
    verdict on the canary, so nothing to count."""

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


def track_replicas(md: ModelDeployment) -> int | None:
    """None when an autoscaler owns the replica count (the Deployment must not set it)."""
    return None if md.spec.autoscaling is not None else md.spec.replicas


def serving_template(md: ModelDeployment) -> ServingTemplate:
    return md.spec.serving()


def _settled(health: dict[str, DeploymentHealth], template: ServingTemplate) -> bool:
    observed = health.get(template.model.version)
    return observed is not None and observed.rolled_out


def plan_tracks(
    md: ModelDeployment,
    health: dict[str, DeploymentHealth],
    now: datetime,
    routing: Routing,
    analysis: tuple[Outcome, AnalysisResult] | AnalysisUnavailable | None = None,
    request: tuple[str, Request] | None = None,
) -> Plan:
    """`analysis` is the verdict (or why there is none) of an analysis the reconciler ran
    because a previous call returned `analysis_due`; `request` is an unconsumed (id, verb) from
    `kubectl modeldeploy`."""
    target = md.spec.serving()
    status = md.status
    stable = status.stable_serving
    replicas = track_replicas(md)

    if stable is None or stable.model.version == target.model.version:
        plan = _single_version(md, health, target, stable, replicas)
    elif status.failed_serving_hash == target.fingerprint():
        plan = _still_failed(md, stable, target, replicas)
    elif md.spec.rollout.strategy == RolloutStrategy.IMMEDIATE:
        plan = _switch_over(md, health, now, stable, target, replicas)
    else:
        plan = _canary(md, health, now, routing, stable, target, replicas, analysis, request)
    return _with_initial_sizes(md, health, plan)


def _with_initial_sizes(
    md: ModelDeployment, health: dict[str, DeploymentHealth], plan: Plan
) -> Plan:
    """An autoscaled version not created yet starts at its autoscaler's minimum (at least one
    pod, so a scale-to-zero model still proves it loads), not at the Deployment default of 1."""
    autoscaling = md.spec.autoscaling
    if autoscaling is None:
        return plan
    size = max(1, autoscaling.min_replicas)
    tracks = [
        replace(track, initial_replicas=size)
        if track.replicas is None and track.version not in health
        else track
        for track in plan.tracks
    ]
    return replace(plan, tracks=tracks)


def _single_version(
    md: ModelDeployment,
    health: dict[str, DeploymentHealth],
    target: ServingTemplate,
    stable: ServingTemplate | None,
    replicas: int | None,
) -> Plan:
    """First deployment, an in-place server change, or the version set back (abort)."""
    done = _settled(health, target)
    events: list[Event] = []
    if md.status.canary_version is not None:
        events.append(
            Event(
                "RolloutAborted",
                f"spec.model.version set back to {target.model.version}: canary version "
                f"{md.status.canary_version} removed without analysis",
                warning=True,
            )
        )
    return Plan(
        tracks=[TrackPlan(track="stable", serving=target, replicas=replicas, weight=100)],
        traffic_versions=[target.model.version],
        # A first version that never became ready is not "stable": nothing has served yet.
        stable=target if done else stable,
        target=target,
        # The last rollout's analysis stays visible after its promotion.
        rollout=RolloutState(last_analysis=md.status.last_analysis),
        in_progress=not done,
        requeue_after=None if done else RECHECK_SECONDS,
        events=events,
    )


def _still_failed(
    md: ModelDeployment, stable: ServingTemplate, target: ServingTemplate, replicas: int | None
) -> Plan:
    """The spec still asks for a template that was rolled back: stay on stable, keep Failed."""
    previous = md.status.last_analysis
    return Plan(
        tracks=[TrackPlan(track="stable", serving=stable, replicas=replicas, weight=100)],
        traffic_versions=[stable.model.version],
        stable=stable,
        target=target,
        rollout=RolloutState(
            failed_serving_hash=target.fingerprint(), last_analysis=md.status.last_analysis
        ),
        failure=Failure(
            _failure_reason(md),
            f"version {target.model.version} was rolled back"
            + (f": {previous.message}" if previous and previous.message else "")
            + "; change the spec to try again",
        ),
    )


def _failure_reason(md: ModelDeployment) -> str:
    for cond in md.status.conditions:
        if cond.type == "Progressing" and cond.reason:
            return cond.reason
    return "RolledBack"


def _rollback(
    md: ModelDeployment,
    stable: ServingTemplate,
    target: ServingTemplate,
    replicas: int | None,
    reason: str,
    message: str,
    last_analysis: AnalysisResult | None,
    request_id: str | None = None,
) -> Plan:
    return Plan(
        tracks=[TrackPlan(track="stable", serving=stable, replicas=replicas, weight=100)],
        traffic_versions=[stable.model.version],
        stable=stable,
        target=target,
        rollout=RolloutState(failed_serving_hash=target.fingerprint(), last_analysis=last_analysis),
        failure=Failure(reason, message),
        events=[
            Event(
                "RolledBack",
                f"version {target.model.version} rolled back, 100% traffic on "
                f"{stable.model.version}: {message}",
                warning=True,
            )
        ],
        request_id=request_id,
    )


def _promote(
    target: ServingTemplate,
    replicas: int | None,
    message: str,
    last_analysis: AnalysisResult | None,
    request_id: str | None = None,
) -> Plan:
    return Plan(
        tracks=[TrackPlan(track="stable", serving=target, replicas=replicas, weight=100)],
        traffic_versions=[target.model.version],
        stable=target,
        target=target,
        rollout=RolloutState(last_analysis=last_analysis),
        events=[Event("Promoted", f"version {target.model.version} promoted: {message}")],
        request_id=request_id,
    )


def _switch_over(
    md: ModelDeployment,
    health: dict[str, DeploymentHealth],
    now: datetime,
    stable: ServingTemplate,
    target: ServingTemplate,
    replicas: int | None,
) -> Plan:
    """Immediate: all traffic moves once every new replica is ready."""
    if _settled(health, target):
        return _promote(target, replicas, "all replicas ready (strategy Immediate)", None)
    started = _started(md, target, now)
    deadline = parse_duration(md.spec.rollout.progress_deadline)
    if (now - started).total_seconds() > deadline:
        observed = health.get(target.model.version)
        detail = observed.explain() if observed else "no Deployment"
        return _rollback(
            md, stable, target, replicas, "ProgressDeadlineExceeded",
            f"not ready within {md.spec.rollout.progress_deadline}: {detail}", None,
        )  # fmt: skip
    return Plan(
        tracks=[
            TrackPlan(track="stable", serving=stable, replicas=replicas, weight=100),
            # Sized as if it served everything (weight 100), so an autoscaled new version is
            # already at full size when traffic switches to it.
            TrackPlan(track="canary", serving=target, replicas=replicas, weight=100),
        ],
        traffic_versions=[stable.model.version],
        stable=stable,
        target=target,
        rollout=RolloutState(canary=target, weight=0, step_started_at=started),
        in_progress=True,
        requeue_after=RECHECK_SECONDS,
    )


def _started(md: ModelDeployment, target: ServingTemplate, now: datetime) -> datetime:
    """When the rollout towards `target` began (now, if it begins in this pass)."""
    current = md.status.canary_serving
    if current is not None and current.fingerprint() == target.fingerprint():
        return md.status.step_started_at or now
    return now


def _canary(
    md: ModelDeployment,
    health: dict[str, DeploymentHealth],
    now: datetime,
    routing: Routing,
    stable: ServingTemplate,
    target: ServingTemplate,
    replicas: int | None,
    analysis: tuple[Outcome, AnalysisResult] | AnalysisUnavailable | None,
    request: tuple[str, Request] | None,
) -> Plan:
    spec = md.spec.rollout
    status = md.status
    steps = spec.steps
    events: list[Event] = []
    continuing = (
        status.canary_serving is not None
        and status.canary_serving.fingerprint() == target.fingerprint()
    )
    if continuing:
        state = RolloutState(
            canary=target,
            weight=status.canary_weight or 0,
            step=status.current_step,
            step_started_at=status.step_started_at or now,
            failed_checks=status.failed_checks or 0,
            last_analysis=status.last_analysis,
            paused=spec.paused or _paused_by_request(md),
        )
    else:
        if status.canary_version is not None:
            events.append(
                Event(
                    "RolloutRestarted",
                    f"version {target.model.version} arrived while {status.canary_version} "
                    f"was rolling out: restarting from stable {stable.model.version}",
                )
            )
        events.append(
            Event(
                "RolloutStarted",
                f"canary version {target.model.version} starting beside stable "
                f"{stable.model.version} with no traffic",
            )
        )
        state = RolloutState(canary=target, weight=0, step=None, step_started_at=now)

    request_id: str | None = None
    if request is not None:
        request_id, verb = request
        if verb == "promote":
            return _promote(
                target, replicas, "promoted by request", state.last_analysis, request_id
            )
        if verb == "abort":
            return _rollback(
                md, stable, target, replicas, "Aborted", "aborted by request",
                state.last_analysis, request_id,
            )  # fmt: skip
        state = replace(state, paused=verb == "pause" or spec.paused)
        events.append(
            Event("Paused" if verb == "pause" else "Resumed", f"rollout {verb}d by request")
        )

    canary_health = health.get(target.model.version)
    elapsed = (now - (state.step_started_at or now)).total_seconds()
    deadline = parse_duration(spec.progress_deadline)
    interval = parse_duration(spec.step_interval)
    analysis_due = False
    unavailable: str | None = None
    requeue = RECHECK_SECONDS

    if state.step is None:
        # Warming up: no traffic until every canary replica is ready.
        if canary_health is not None and canary_health.rolled_out:
            state = replace(state, step=0, weight=steps[0], step_started_at=now)
            events.append(Event("StepAdvanced", f"canary {target.model.version} at {steps[0]}%"))
            requeue = interval
        elif elapsed > deadline:
            detail = canary_health.explain() if canary_health else "no Deployment"
            return _rollback(
                md, stable, target, replicas, "ProgressDeadlineExceeded",
                f"canary not ready within {spec.progress_deadline}: {detail}", state.last_analysis,
                request_id,
            )  # fmt: skip
    elif state.paused:
        requeue = 0.0  # nothing moves until resumed; watch events wake us
    elif elapsed < interval:
        requeue = interval - elapsed
    else:
        verdict: Outcome
        result: AnalysisResult | None = state.last_analysis
        if canary_health is None or not canary_health.serving:
            verdict = "fail"
            events.append(Event("CanaryNotReady", "canary has no ready replica", warning=True))
        elif spec.analysis is None:
            verdict = "pass"
        elif analysis is None:
            verdict = "hold"
            analysis_due = True
        elif isinstance(analysis, AnalysisUnavailable):
            # Not a verdict on the canary: hold, counting nothing, as long as the deadline allows.
            if elapsed > deadline:
                return _rollback(
                    md, stable, target, replicas, "ProgressDeadlineExceeded",
                    f"analysis got no answer from Prometheus within {spec.progress_deadline}: "
                    f"{analysis.message}", state.last_analysis, request_id,
                )  # fmt: skip
            unavailable = analysis.message
            if _progressing_reason(md) != ANALYSIS_UNAVAILABLE:
                events.append(
                    Event(
                        ANALYSIS_UNAVAILABLE,
                        f"canary {target.model.version} held at {state.weight}%: {unavailable}; "
                        f"no check counted; rolled back if Prometheus stays unavailable past "
                        f"progressDeadline {spec.progress_deadline}",
                        warning=True,
                    )
                )
        else:
            verdict, result = analysis
            state = replace(state, last_analysis=result)
        if not analysis_due:
            if unavailable is None:
                state, verdict_plan = _judge(
                    md, stable, target, replicas, state, verdict, result, now, elapsed,
                    deadline, events, request_id,
                )  # fmt: skip
                if verdict_plan is not None:
                    return verdict_plan
            requeue = interval

    weight = state.weight or 0
    stable_replicas = replicas if replicas is not None else 1
    canary_replicas: int | None = (
        max(1, routing.canary_replicas(stable_replicas, weight)) if replicas is not None else None
    )
    split = routing.split_by_service and weight > 0
    return Plan(
        tracks=[
            TrackPlan(track="stable", serving=stable, replicas=replicas, weight=100 - weight),
            TrackPlan(track="canary", serving=target, replicas=canary_replicas, weight=weight),
        ],
        traffic_versions=(
            [stable.model.version, target.model.version] if split else [stable.model.version]
        ),
        stable=stable,
        target=target,
        rollout=state,
        in_progress=True,
        requeue_after=None if requeue <= 0 else max(requeue, 0.5),
        analysis_due=analysis_due,
        events=events,
        request_id=request_id,
        analysis_unavailable=unavailable,
    )


def _judge(
    md: ModelDeployment,
    stable: ServingTemplate,
    target: ServingTemplate,
    replicas: int | None,
    state: RolloutState,
    verdict: Outcome,
    result: AnalysisResult | None,
    now: datetime,
    elapsed: float,
    deadline: float,
    events: list[Event],
    request_id: str | None,
) -> tuple[RolloutState, Plan | None]:
    spec = md.spec.rollout
    steps = spec.steps
    summary = result.message if result is not None and result.message else verdict
    if verdict == "pass":
        step = state.step or 0
        if step + 1 >= len(steps):
            return state, _promote(
                target, replicas, f"all {len(steps)} steps passed ({summary})",
                state.last_analysis, request_id,
            )  # fmt: skip
        nxt = step + 1
        events.append(
            Event("StepAdvanced", f"canary {target.model.version} at {steps[nxt]}% ({summary})")
        )
        return replace(state, step=nxt, weight=steps[nxt], step_started_at=now), None
    if verdict == "fail":
        failed = state.failed_checks + 1
        limit = spec.analysis.max_failed_checks if spec.analysis is not None else 1
        if failed >= limit:
            return state, _rollback(
                md, stable, target, replicas, "AnalysisFailed",
                f"{failed} failed checks (limit {limit}): {summary}", state.last_analysis,
                request_id,
            )  # fmt: skip
        events.append(
            Event("AnalysisFailed", f"check {failed}/{limit} failed: {summary}", warning=True)
        )
        return replace(state, failed_checks=failed, step_started_at=now), None
    # hold: no data and noData=Hold — wait, but not past the progress deadline.
    if elapsed > deadline:
        return state, _rollback(
            md, stable, target, replicas, "AnalysisNoData",
            f"no analysis data for {spec.progress_deadline}: {summary}", state.last_analysis,
            request_id,
        )  # fmt: skip
    return state, None


def _progressing_reason(md: ModelDeployment) -> str | None:
    for cond in md.status.conditions:
        if cond.type == "Progressing":
            return cond.reason
    return None


def _paused_by_request(md: ModelDeployment) -> bool:
    """A pause requested with `kubectl modeldeploy pause` is remembered in the Progressing
    condition's reason (PausedByRequest) until a resume."""
    for cond in md.status.conditions:
        if cond.type == "Progressing":
            return cond.reason == PAUSED_BY_REQUEST
    return False
