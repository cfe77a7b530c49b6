"""The rollout state machine: which versions run, with how much traffic, and what happens next.

Pure: (ModelDeployment spec + status, observed health, clock, latest analysis verdict, user
request) → a `Plan`. Everything that must survive an operator restart is in the status the plan
produces (`stableServing`, `canaryServing`, `currentStep`, `stepStartedAt`, `failedChecks`,
`failedServingHash`, `pauseConditions`, `lastRequestId`), never in memory, so a restarted operator
continues exactly where it was: a step is only advanced by writing the new step into the status,
and a rollback by writing the failed template's fingerprint.

The states (`Stage`), each with its own function:
  Steady        — one version: the first deployment, a server-only change rolled in place
                  (maxUnavailable 0), or the version set back to stable (an abort, no analysis);
  RolledBack    — the spec still asks for a template that was rolled back: stable, phase Failed;
  SwitchingOver — `strategy: Immediate`: all traffic moves once every new replica is ready;
and a canary (a newer version arriving mid-rollout restarts it from stable), at one of:
  Warming       — beside stable with no traffic until every canary replica is ready (or the
                  progress deadline passes → rollback);
  Paused        — held at its step by spec.rollout.paused or a pause request;
  Waiting       — at `steps[i]` percent until `stepInterval` has passed;
  Judging       — the step is due: the analysis runs (if any): pass → next step, or promotion
                  after the last; fail → a failed check, rollback at `maxFailedChecks`; no data →
                  per `noData` (Hold waits up to the progress deadline); Prometheus unreachable →
                  no verdict: the step holds (condition and Event say why) and asks again each
                  interval, up to the progress deadline; when it answers again with no data
                  (its window spans the outage) the step starts again instead of counting.
A promotion makes the canary stable (the old stable goes); a rollback puts 100% on stable at
once and removes the canary (phase Failed until the spec changes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from modeldeploy_operator.api import (
    AnalysisResult,
    ModelDeployment,
    PauseReason,
    RolloutStrategy,
    ServingTemplate,
)
from modeldeploy_operator.builders import TrackPlan
from modeldeploy_operator.health import DeploymentHealth
from modeldeploy_operator.rollout.analysis.verdict import Outcome, failed_for_want_of_data
from modeldeploy_operator.rollout.context import AnalysisAnswer, RolloutContext
from modeldeploy_operator.rollout.plan import (
    ANALYSIS_RESTARTED,
    ANALYSIS_UNAVAILABLE,
    RECHECK_SECONDS,
    AnalysisUnavailable,
    Event,
    Failure,
    Plan,
    RolloutState,
    Routing,
)
from modeldeploy_operator.rollout.requests import Request, paused_by_request


class Stage(StrEnum):
    """The named states of the machine (see the module docstring)."""

    STEADY = "Steady"
    ROLLED_BACK = "RolledBack"
    SWITCHING_OVER = "SwitchingOver"
    WARMING = "Warming"
    PAUSED = "Paused"
    WAITING = "Waiting"
    JUDGING = "Judging"


def track_replicas(md: ModelDeployment) -> int | None:
    """None when an autoscaler owns the replica count (the Deployment must not set it)."""
    return None if md.spec.autoscaling is not None else md.spec.replicas


def stage_of(md: ModelDeployment) -> Stage | None:
    """The state the spec and status put the model in; None for a canary, whose stage depends
    on the pass (`canary_stage`)."""
    target = md.spec.serving()
    stable = md.status.stable_serving
    if stable is None or stable.model.version == target.model.version:
        return Stage.STEADY
    if md.status.failed_serving_hash == target.fingerprint():
        return Stage.ROLLED_BACK
    if md.spec.rollout.strategy == RolloutStrategy.IMMEDIATE:
        return Stage.SWITCHING_OVER
    return None


def canary_stage(ctx: RolloutContext, state: RolloutState) -> Stage:
    if state.step is None:
        return Stage.WARMING
    if state.paused:
        return Stage.PAUSED
    if ctx.elapsed_since(state.step_started_at) < ctx.interval:
        return Stage.WAITING
    return Stage.JUDGING


def plan_tracks(
    md: ModelDeployment,
    health: Mapping[str, DeploymentHealth],
    now: datetime,
    routing: Routing,
    analysis: AnalysisAnswer | None = None,
    request: tuple[str, Request] | None = None,
) -> Plan:
    """`analysis` is the verdict (or why there is none) of an analysis the reconciler ran
    because a previous call returned `analysis_due`; `request` is an unconsumed (id, verb) from
    `kubectl modeldeploy`."""
    target = md.spec.serving()
    stable = md.status.stable_serving
    replicas = track_replicas(md)
    stage = stage_of(md)
    if stable is None or stage == Stage.STEADY:
        plan = _steady(md, health, target, stable, replicas)
    else:
        ctx = RolloutContext(md, health, now, routing, stable, target, replicas, analysis, request)
        if stage == Stage.ROLLED_BACK:
            plan = _still_failed(ctx)
        elif stage == Stage.SWITCHING_OVER:
            plan = _switch_over(ctx)
        else:
            plan = _canary(ctx)
    return _with_initial_sizes(md, health, plan)


def _with_initial_sizes(
    md: ModelDeployment, health: Mapping[str, DeploymentHealth], plan: Plan
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


def _only(serving: ServingTemplate, replicas: int | None) -> list[TrackPlan]:
    """One version with all the traffic."""
    return [TrackPlan(track="stable", serving=serving, replicas=replicas, weight=100)]


# ---------------------------------------------------------------------------------------------
# Steady, RolledBack, SwitchingOver.


def _steady(
    md: ModelDeployment,
    health: Mapping[str, DeploymentHealth],
    target: ServingTemplate,
    stable: ServingTemplate | None,
    replicas: int | None,
) -> Plan:
    """First deployment, an in-place server change, or the version set back (abort)."""
    observed = health.get(target.model.version)
    done = observed is not None and observed.rolled_out
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
        tracks=_only(target, replicas),
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


def _still_failed(ctx: RolloutContext) -> Plan:
    """The spec still asks for a template that was rolled back: stay on stable, keep Failed."""
    previous = ctx.md.status.last_analysis
    return Plan(
        tracks=_only(ctx.stable, ctx.replicas),
        traffic_versions=[ctx.stable.model.version],
        stable=ctx.stable,
        target=ctx.target,
        rollout=RolloutState(failed_serving_hash=ctx.target.fingerprint(), last_analysis=previous),
        failure=Failure(
            _failure_reason(ctx.md),
            f"version {ctx.target.model.version} was rolled back"
            + (f": {previous.message}" if previous and previous.message else "")
            + "; change the spec to try again",
        ),
    )


def _failure_reason(md: ModelDeployment) -> str:
    return _progressing_reason(md) or "RolledBack"


def _switch_over(ctx: RolloutContext) -> Plan:
    """Immediate: all traffic moves once every new replica is ready."""
    if ctx.target_settled():
        return _promote(ctx, "all replicas ready (strategy Immediate)", None)
    started = _started(ctx)
    if ctx.elapsed_since(started) > ctx.deadline:
        observed = ctx.target_health
        detail = observed.explain() if observed else "no Deployment"
        return _rollback(
            ctx, "ProgressDeadlineExceeded",
            f"not ready within {ctx.spec.progress_deadline}: {detail}", None,
        )  # fmt: skip
    return Plan(
        tracks=[
            TrackPlan(track="stable", serving=ctx.stable, replicas=ctx.replicas, weight=100),
            # Sized as if it served everything (weight 100), so an autoscaled new version is
            # already at full size when traffic switches to it.
            TrackPlan(track="canary", serving=ctx.target, replicas=ctx.replicas, weight=100),
        ],
        traffic_versions=[ctx.stable.model.version],
        stable=ctx.stable,
        target=ctx.target,
        rollout=RolloutState(canary=ctx.target, weight=0, step_started_at=started),
        in_progress=True,
        requeue_after=RECHECK_SECONDS,
    )


def _started(ctx: RolloutContext) -> datetime:
    """When the rollout towards the target began (now, if it begins in this pass)."""
    current = ctx.md.status.canary_serving
    if current is not None and current.fingerprint() == ctx.target.fingerprint():
        return ctx.md.status.step_started_at or ctx.now
    return ctx.now


# ---------------------------------------------------------------------------------------------
# The ends of a rollout.


def _rollback(
    ctx: RolloutContext,
    reason: str,
    message: str,
    last_analysis: AnalysisResult | None,
    request_id: str | None = None,
) -> Plan:
    return Plan(
        tracks=_only(ctx.stable, ctx.replicas),
        traffic_versions=[ctx.stable.model.version],
        stable=ctx.stable,
        target=ctx.target,
        rollout=RolloutState(
            failed_serving_hash=ctx.target.fingerprint(), last_analysis=last_analysis
        ),
        failure=Failure(reason, message),
        events=[
            Event(
                "RolledBack",
                f"version {ctx.target.model.version} rolled back, 100% traffic on "
                f"{ctx.stable.model.version}: {message}",
                warning=True,
            )
        ],
        request_id=request_id,
    )


def _promote(
    ctx: RolloutContext,
    message: str,
    last_analysis: AnalysisResult | None,
    request_id: str | None = None,
) -> Plan:
    return Plan(
        tracks=_only(ctx.target, ctx.replicas),
        traffic_versions=[ctx.target.model.version],
        stable=ctx.target,
        target=ctx.target,
        rollout=RolloutState(last_analysis=last_analysis),
        events=[Event("Promoted", f"version {ctx.target.model.version} promoted: {message}")],
        request_id=request_id,
    )


# ---------------------------------------------------------------------------------------------
# A canary: Warming, Paused, Waiting, Judging.


@dataclass(frozen=True)
class _Held:
    """A canary stage that neither promotes nor rolls back: the state to write and when to look
    again (None: only watch events wake the next pass)."""

    state: RolloutState
    requeue: float | None
    analysis_due: bool = False
    unavailable: str | None = None  # why the step holds: Prometheus did not answer


# What a canary stage decides: a final plan (promotion, rollback) or a held canary.
StageOutcome = Plan | _Held
# (context, state, events so far) → outcome; a stage appends the Events it causes.
StageHandler = Callable[[RolloutContext, RolloutState, list[Event]], StageOutcome]


def _canary(ctx: RolloutContext) -> Plan:
    events: list[Event] = []
    state = _canary_state(ctx, events)
    request_id: str | None = None
    if ctx.request is not None:
        request_id, verb = ctx.request
        if verb == "promote":
            return _promote(ctx, "promoted by request", state.last_analysis, request_id)
        if verb == "abort":
            return _rollback(ctx, "Aborted", "aborted by request", state.last_analysis, request_id)
        state = replace(state, pause=_pause(ctx.md, by_request=verb == "pause"))
        events.append(
            Event("Paused" if verb == "pause" else "Resumed", f"rollout {verb}d by request")
        )
    outcome = _CANARY_STAGES[canary_stage(ctx, state)](ctx, state, events)
    if isinstance(outcome, Plan):
        return replace(outcome, request_id=request_id)
    return _canary_plan(ctx, outcome, events, request_id)


def _canary_state(ctx: RolloutContext, events: list[Event]) -> RolloutState:
    """The rollout towards the target as the status left it, or a fresh one (warming up)."""
    status = ctx.md.status
    continuing = (
        status.canary_serving is not None
        and status.canary_serving.fingerprint() == ctx.target.fingerprint()
    )
    if continuing:
        return RolloutState(
            canary=ctx.target,
            weight=status.canary_weight or 0,
            step=status.current_step,
            step_started_at=status.step_started_at or ctx.now,
            failed_checks=status.failed_checks or 0,
            last_analysis=status.last_analysis,
            pause=_pause(ctx.md, by_request=paused_by_request(status)),
        )
    if status.canary_version is not None:
        events.append(
            Event(
                "RolloutRestarted",
                f"version {ctx.target.model.version} arrived while {status.canary_version} "
                f"was rolling out: restarting from stable {ctx.stable.model.version}",
            )
        )
    events.append(
        Event(
            "RolloutStarted",
            f"canary version {ctx.target.model.version} starting beside stable "
            f"{ctx.stable.model.version} with no traffic",
        )
    )
    return RolloutState(canary=ctx.target, weight=0, step=None, step_started_at=ctx.now)


def _pause(md: ModelDeployment, *, by_request: bool) -> PauseReason | None:
    """Who holds the canary: the spec's pause names itself even while a request holds too."""
    if md.spec.rollout.paused:
        return PauseReason.SPEC
    return PauseReason.REQUEST if by_request else None


def _warming(ctx: RolloutContext, state: RolloutState, events: list[Event]) -> StageOutcome:
    """No traffic until every canary replica is ready."""
    if ctx.target_settled():
        first = ctx.spec.steps[0]
        events.append(Event("StepAdvanced", f"canary {ctx.target.model.version} at {first}%"))
        return _Held(replace(state, step=0, weight=first, step_started_at=ctx.now), ctx.interval)
    if ctx.elapsed_since(state.step_started_at) > ctx.deadline:
        observed = ctx.target_health
        detail = observed.explain() if observed else "no Deployment"
        return _rollback(
            ctx, "ProgressDeadlineExceeded",
            f"canary not ready within {ctx.spec.progress_deadline}: {detail}", state.last_analysis,
        )  # fmt: skip
    return _Held(state, RECHECK_SECONDS)


def _paused(ctx: RolloutContext, state: RolloutState, events: list[Event]) -> StageOutcome:
    """Nothing moves until resumed; watch events wake the next pass."""
    return _Held(state, None)


def _waiting(ctx: RolloutContext, state: RolloutState, events: list[Event]) -> StageOutcome:
    return _Held(state, ctx.interval - ctx.elapsed_since(state.step_started_at))


def _judging(ctx: RolloutContext, state: RolloutState, events: list[Event]) -> StageOutcome:
    """The step is due: readiness, then the analysis (asked for first if the spec has one)."""
    canary = ctx.target_health
    verdict: Outcome
    result: AnalysisResult | None = state.last_analysis
    if canary is None or not canary.serving:
        verdict = "fail"
        events.append(Event("CanaryNotReady", "canary has no ready replica", warning=True))
    elif ctx.spec.analysis is None:
        verdict = "pass"
    elif ctx.analysis is None:
        return _Held(state, RECHECK_SECONDS, analysis_due=True)
    elif isinstance(ctx.analysis, AnalysisUnavailable):
        return _unanswered(ctx, state, ctx.analysis, events)
    else:
        verdict, result = ctx.analysis
        state = replace(state, last_analysis=result)
        if (
            verdict == "fail"
            and _progressing_reason(ctx.md) == ANALYSIS_UNAVAILABLE
            and failed_for_want_of_data(result)
        ):
            return _restart_after_outage(ctx, state, events)
    return _judge(ctx, state, verdict, result, events)


def _restart_after_outage(
    ctx: RolloutContext, state: RolloutState, events: list[Event]
) -> StageOutcome:
    """Prometheus answers again but has no samples for the time it was down, so "no data" for a
    window that spans its outage says nothing about the canary: the step starts again and the
    next analysis judges a full window of fresh data (where no data follows noData again)."""
    events.append(
        Event(
            ANALYSIS_RESTARTED,
            f"canary {ctx.target.model.version} at {state.weight}%: Prometheus answers again but "
            f"has no data for a window that spans its outage; no check counted, the step waits "
            f"{ctx.spec.step_interval} again",
        )
    )
    return _Held(replace(state, step_started_at=ctx.now), ctx.interval)


def _unanswered(
    ctx: RolloutContext, state: RolloutState, why: AnalysisUnavailable, events: list[Event]
) -> StageOutcome:
    """Not a verdict on the canary: hold, counting nothing, as long as the deadline allows."""
    if ctx.elapsed_since(state.step_started_at) > ctx.deadline:
        return _rollback(
            ctx, "ProgressDeadlineExceeded",
            f"analysis got no answer from Prometheus within {ctx.spec.progress_deadline}: "
            f"{why.message}", state.last_analysis,
        )  # fmt: skip
    if _progressing_reason(ctx.md) != ANALYSIS_UNAVAILABLE:
        events.append(
            Event(
                ANALYSIS_UNAVAILABLE,
                f"canary {ctx.target.model.version} held at {state.weight}%: {why.message}; "
                f"no check counted; rolled back if Prometheus stays unavailable past "
                f"progressDeadline {ctx.spec.progress_deadline}",
                warning=True,
            )
        )
    return _Held(state, ctx.interval, unavailable=why.message)


def _judge(
    ctx: RolloutContext,
    state: RolloutState,
    verdict: Outcome,
    result: AnalysisResult | None,
    events: list[Event],
) -> StageOutcome:
    """A verdict on the step: the next step or promotion, a failed check or rollback, or (no
    data under noData Hold) waiting up to the progress deadline."""
    steps = ctx.spec.steps
    summary = result.message if result is not None and result.message else verdict
    if verdict == "pass":
        step = state.step or 0
        if step + 1 >= len(steps):
            return _promote(ctx, f"all {len(steps)} steps passed ({summary})", state.last_analysis)
        nxt = step + 1
        events.append(
            Event("StepAdvanced", f"canary {ctx.target.model.version} at {steps[nxt]}% ({summary})")
        )
        return _Held(
            replace(state, step=nxt, weight=steps[nxt], step_started_at=ctx.now), ctx.interval
        )
    if verdict == "fail":
        failed = state.failed_checks + 1
        limit = ctx.spec.analysis.max_failed_checks if ctx.spec.analysis is not None else 1
        if failed >= limit:
            return _rollback(
                ctx, "AnalysisFailed", f"{failed} failed checks (limit {limit}): {summary}",
                state.last_analysis,
            )  # fmt: skip
        events.append(
            Event("AnalysisFailed", f"check {failed}/{limit} failed: {summary}", warning=True)
        )
        return _Held(replace(state, failed_checks=failed, step_started_at=ctx.now), ctx.interval)
    # hold: no data and noData=Hold — wait, but not past the progress deadline.
    if ctx.elapsed_since(state.step_started_at) > ctx.deadline:
        return _rollback(
            ctx, "AnalysisNoData",
            f"no analysis data for {ctx.spec.progress_deadline}: {summary}", state.last_analysis,
        )  # fmt: skip
    return _Held(state, ctx.interval)


_CANARY_STAGES: Mapping[Stage, StageHandler] = {
    Stage.WARMING: _warming,
    Stage.PAUSED: _paused,
    Stage.WAITING: _waiting,
    Stage.JUDGING: _judging,
}


def _canary_plan(
    ctx: RolloutContext, held: _Held, events: list[Event], request_id: str | None
) -> Plan:
    """Both versions run; the canary has the state's weight."""
    state = held.state
    weight = state.weight or 0
    stable_replicas = ctx.replicas if ctx.replicas is not None else 1
    canary_replicas: int | None = (
        max(1, ctx.routing.canary_replicas(stable_replicas, weight))
        if ctx.replicas is not None
        else None
    )
    split = ctx.routing.split_by_service and weight > 0
    stable, target = ctx.stable.model.version, ctx.target.model.version
    requeue = held.requeue
    return Plan(
        tracks=[
            TrackPlan(
                track="stable", serving=ctx.stable, replicas=ctx.replicas, weight=100 - weight
            ),
            TrackPlan(track="canary", serving=ctx.target, replicas=canary_replicas, weight=weight),
        ],
        traffic_versions=[stable, target] if split else [stable],
        stable=ctx.stable,
        target=ctx.target,
        rollout=state,
        in_progress=True,
        requeue_after=None if requeue is None or requeue <= 0 else max(requeue, 0.5),
        analysis_due=held.analysis_due,
        events=events,
        request_id=request_id,
        analysis_unavailable=held.unavailable,
    )


def _progressing_reason(md: ModelDeployment) -> str | None:
    for cond in md.status.conditions:
        if cond.type == "Progressing":
            return cond.reason
    return None
