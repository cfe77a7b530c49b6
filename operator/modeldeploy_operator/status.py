"""The status a user reads: phase, conditions with actionable reasons, and the Events to post.

Pure: (ModelDeployment, plan, observed health, clock) → status dict + events. The same inputs
always give the same status, so an unchanged world yields an unchanged status and no write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment, PauseReason, ServingTemplate
from modeldeploy_operator.health import DeploymentHealth
from modeldeploy_operator.monitoring import ERROR_PREFIX as MONITORING_ERROR
from modeldeploy_operator.monitoring.keda import ScaleToZero
from modeldeploy_operator.rollout.plan import ANALYSIS_UNAVAILABLE, Event, Plan
from modeldeploy_operator.rollout.routers.factory import RouterUnavailableError


@dataclass(frozen=True)
class StatusChange:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str
    # Its Event is a Warning when the condition turns False (a registry gone, a version rejected).
    warn_when_false: bool = False
    # False: no Event of its own, another condition of the pass announces the same cause.
    announced: bool = True


def _timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(moment: datetime | None) -> str | None:
    # Sub-second precision (a step timed from a whole-second stamp would advance up to 1 s
    # early), spelled as pydantic spells it, so a re-read status compares equal.
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dump(template: ServingTemplate | None) -> dict[str, Any] | None:
    if template is None:
        return None
    return template.model_dump(mode="json", by_alias=True, exclude_none=True)


def _progressing(md: ModelDeployment, plan: Plan, health: dict[str, DeploymentHealth]) -> Condition:
    target_version = plan.target.model.version
    target = health.get(target_version)
    detail = target.explain() if target is not None else "creating its Deployment"
    state = plan.rollout
    if plan.failure is not None:
        return Condition("Progressing", False, plan.failure.reason, plan.failure.message)
    if not plan.in_progress:
        return Condition(
            "Progressing", False, "RolloutComplete", f"version {target_version} serves all traffic"
        )
    if plan.stable is None or plan.stable.model.version == target_version:
        return Condition(
            "Progressing", True, "RollingOut", f"rolling out {target_version}: {detail}"
        )
    stable_version = plan.stable.model.version
    if state.pause is not None:
        return Condition(
            "Progressing",
            True,
            state.pause.value,
            f"canary {target_version} held at {state.weight or 0}%; resume to continue",
        )
    if state.step is None:
        return Condition(
            "Progressing",
            True,
            "CanaryStarting",
            f"canary {target_version} starting with no traffic; {stable_version} serves all "
            f"traffic until every canary replica is ready: {detail}",
        )
    steps = md.spec.rollout.steps
    if plan.analysis_unavailable is not None:
        return Condition(
            "Progressing",
            True,
            ANALYSIS_UNAVAILABLE,
            f"canary {target_version} held at {state.weight}% (step {state.step + 1}/"
            f"{len(steps)}): Prometheus did not answer the analysis: {plan.analysis_unavailable}; "
            f"no check counted (failed checks {state.failed_checks}); rolled back if this lasts "
            f"past progressDeadline {md.spec.rollout.progress_deadline}",
        )
    waiting = "analysing" if plan.analysis_due else "waiting for the next analysis"
    return Condition(
        "Progressing",
        True,
        "CanaryStep",
        f"canary {target_version} at {state.weight}% (step {state.step + 1}/{len(steps)}), "
        f"{waiting}; failed checks {state.failed_checks}",
    )


def _conditions(
    md: ModelDeployment, plan: Plan, health: dict[str, DeploymentHealth]
) -> list[Condition]:
    serving_version = plan.traffic_versions[0]
    serving = health.get(serving_version)
    # An autoscaled model is Ready only with its minimum ready, whatever size the Deployment
    # had before its autoscaler caught up.
    minimum = md.spec.autoscaling.min_replicas if md.spec.autoscaling is not None else 0

    if serving is None:
        ready = Condition(
            "Ready", False, "DeploymentMissing", f"creating version {serving_version}"
        )
    elif serving.desired == 0:
        ready = Condition("Ready", False, "ScaledToZero", "no replicas requested")
    elif serving.rolled_out and serving.ready >= minimum:
        ready = Condition(
            "Ready",
            True,
            "AllReplicasReady",
            f"{serving.ready}/{serving.desired} replicas of version {serving_version} ready",
        )
    elif serving.rolled_out:
        ready = Condition(
            "Ready",
            False,
            "BelowMinReplicas",
            f"{serving.ready} replicas of version {serving_version} ready; autoscaling.minReplicas "
            f"is {minimum}",
        )
    else:
        ready = Condition("Ready", False, "ReplicasNotReady", serving.explain())

    progressing = _progressing(md, plan, health)

    stuck = [h for v, h in sorted(health.items()) if h.stuck and v in _live_versions(plan)]
    if stuck:
        first = stuck[0]
        reason = (
            "ProgressDeadlineExceeded"
            if first.progress_deadline_exceeded
            else (first.problems[0].reason if first.problems else "PodsNotReady")
        )
        degraded = Condition("Degraded", True, reason, "; ".join(h.explain() for h in stuck))
    else:
        degraded = Condition("Degraded", False, "AsExpected", "no problems observed")
    return [ready, progressing, degraded]


def _pause_conditions(
    pause: PauseReason | None, now: float, previous: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """Why the canary is held, since the pass that first held it for that reason (so an
    unchanged pause writes nothing); absent when it is not held."""
    if pause is None:
        return None
    held = {p.get("reason"): p.get("startTime") for p in previous.get("pauseConditions") or []}
    return [{"reason": pause.value, "startTime": held.get(pause.value) or _timestamp(now)}]


def _live_versions(plan: Plan) -> set[str]:
    return {t.serving.model.version for t in plan.tracks}


def _phase(plan: Plan, conditions: dict[str, Condition]) -> str:
    if plan.failure is not None:
        return "Failed"
    if conditions["Degraded"].status:
        return "Degraded"
    if conditions["Progressing"].status:
        return "Progressing" if plan.stable is not None else "Pending"
    return "Ready" if conditions["Ready"].status else "Pending"


def _status_text(cond: Condition) -> str:
    return "True" if cond.status else "False"


def _render(
    cond: Condition, old: dict[str, Any] | None, generation: int | None, now: float
) -> dict[str, Any]:
    since = _timestamp(now)
    if old is not None and old.get("status") == _status_text(cond):
        since = old["lastTransitionTime"]
    return {
        "type": cond.type,
        "status": _status_text(cond),
        "reason": cond.reason,
        "message": cond.message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


def _transition(cond: Condition, old: dict[str, Any] | None) -> bool:
    """A change worth an Event: the condition's status or reason moved."""
    return cond.announced and (
        old is None or old.get("status") != _status_text(cond) or old.get("reason") != cond.reason
    )


def _event(cond: Condition, old: dict[str, Any] | None) -> Event:
    bad = (
        (cond.type == "Degraded" and cond.status)
        or (cond.type == "Ready" and not cond.status and old is not None)
        or (cond.warn_when_false and not cond.status)
    )
    return Event(cond.reason, f"{cond.type}={_status_text(cond)}: {cond.message}", warning=bad)


def problem_status(
    generation: int | None, now: float, previous: dict[str, Any], reason: str, message: str
) -> StatusChange:
    """The status of a pass that could not make its children so (a child someone else controls,
    an apply the API refused): Degraded says why, and nothing else the pass planned is recorded,
    since the cluster does not reflect it. An Event only when the problem itself changed, so a
    retried failure is not announced on every retry."""
    degraded = Condition("Degraded", True, reason, message)
    old = next((c for c in previous.get("conditions", []) if c["type"] == "Degraded"), None)
    kept = [c for c in previous.get("conditions", []) if c["type"] != "Degraded"]
    events = []
    if _transition(degraded, old) or (old is not None and old.get("message") != message):
        events.append(_event(degraded, old))
    return StatusChange(
        status={
            "phase": "Degraded",
            "conditions": [*kept, _render(degraded, old, generation, now)],
        },
        events=events,
    )


def partial_status(
    generation: int | None,
    now: float,
    previous: dict[str, Any],
    phase: str,
    conditions: Sequence[Condition],
    fields: dict[str, Any],
) -> StatusChange:
    """A status that updates only `conditions` and `fields` (and the phase), for a pass that
    planned nothing (a followed registry has not resolved yet); the other conditions are kept."""
    old = {c["type"]: c for c in previous.get("conditions", [])}
    types = {c.type for c in conditions}
    kept = [c for c in previous.get("conditions", []) if c["type"] not in types]
    events = [_event(c, old.get(c.type)) for c in conditions if _transition(c, old.get(c.type))]
    rendered = [_render(c, old.get(c.type), generation, now) for c in conditions]
    return StatusChange(
        status={
            **fields,
            "observedGeneration": generation,
            "phase": phase,
            "conditions": [*kept, *rendered],
        },
        events=events,
    )


def compute_status(
    md: ModelDeployment,
    plan: Plan,
    health: dict[str, DeploymentHealth],
    now: float,
    previous: dict[str, Any],
    router_problem: RouterUnavailableError | None = None,
    monitoring: str | None = None,
    scale_to_zero: ScaleToZero | None = None,
    extra_conditions: Sequence[Condition] = (),
) -> StatusChange:
    """`previous` is the raw status as stored, so unchanged conditions keep their timestamps.
    `extra_conditions` come from other concerns (a followed registry's), rendered alike."""
    old_conditions = {c["type"]: c for c in previous.get("conditions", [])}
    generation = md.metadata.generation
    conditions = _conditions(md, plan, health)
    # Configuration problems are reported in Degraded unless pods already are.
    if conditions[2].status:
        pass
    elif router_problem is not None:
        conditions[2] = Condition("Degraded", True, router_problem.reason, router_problem.message)
    elif monitoring is not None and monitoring.startswith(MONITORING_ERROR):
        message = monitoring.removeprefix(MONITORING_ERROR)
        conditions[2] = Condition("Degraded", True, "MonitoringUnavailable", message)
    by_type = {c.type: c for c in conditions}
    if scale_to_zero is not None and scale_to_zero.requested:
        # Its own condition: a model that cannot scale to zero still serves (not Degraded).
        conditions.append(
            Condition(
                "ScaleToZero",
                scale_to_zero.reason is None,
                scale_to_zero.reason or "KEDA",
                scale_to_zero.message or "KEDA ScaledObjects scale each version down to zero",
            )
        )

    conditions.extend(extra_conditions)
    rendered: list[dict[str, Any]] = []
    events: list[Event] = list(plan.events)
    for cond in conditions:
        old = old_conditions.get(cond.type)
        rendered.append(_render(cond, old, generation, now))
        if _transition(cond, old):
            events.append(_event(cond, old))

    serving_version = plan.traffic_versions[0]
    serving = health.get(serving_version)
    state = plan.rollout
    canary = state.canary
    stable_version = plan.stable.model.version if plan.stable is not None else None
    if stable_version is not None and stable_version != previous.get("stableVersion"):
        events.append(Event("VersionServing", f"version {stable_version} now serves all traffic"))

    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": _phase(plan, by_type),
        "stableVersion": stable_version,
        "stableServing": _dump(plan.stable),
        "canaryVersion": canary.model.version if canary else None,
        "canaryServing": _dump(canary),
        "canaryWeight": state.weight if canary else None,
        "currentStep": state.step if canary else None,
        "stepStartedAt": _iso(state.step_started_at) if canary else None,
        "failedChecks": state.failed_checks if canary else None,
        "failedServingHash": state.failed_serving_hash,
        "lastAnalysis": (
            state.last_analysis.model_dump(mode="json", by_alias=True, exclude_none=True)
            if state.last_analysis
            else None
        ),
        "pauseConditions": _pause_conditions(state.pause, now, previous),
        "lastRequestId": plan.request_id or previous.get("lastRequestId"),
        "monitoring": monitoring,
        "url": f"http://{md.metadata.name}.{md.metadata.namespace}.svc.cluster.local",
        "replicas": serving.replicas if serving is not None else 0,
        "selector": naming.selector_string(
            naming.version_selector(md.metadata.name, serving_version)
        ),
        "conditions": rendered,
    }
    return StatusChange(status=status, events=events)
