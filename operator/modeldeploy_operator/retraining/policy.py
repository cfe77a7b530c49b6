"""When a RetrainingPolicy starts a run. Pure: (policy, its runs, target, the metric trigger's
value, the alerts Alertmanager delivered, clock) → a `PolicyPlan` (the status, the run to
create, the Events).

Three triggers, each optional. The metric trigger fires once its value has stayed above the
threshold for `holdFor` (since when is `status.heldSince`, so a restarted operator keeps
counting). The alertmanager trigger fires for a firing alert it names whose firing (fingerprint,
startsAt) has started no run of the policy yet: Alertmanager's repeats make one run. The
schedule fires once per scheduled time after `status.lastScheduleTime`, which it then advances
whether a run starts or not. At most one run starts per pass. A firing trigger starts a run unless
a guard holds it back, in this order: the target does not follow an alias; the policy is
suspended (`suspendAfterFailures` runs in a row of this generation did not promote); a run is in
progress; the target is rolling out; the cooldown since the last run; `maxRuns` in `window`.
A held-back trigger is recorded once per hold (status.lastTrigger.suppressed and an Event); a run
started resets the hold, so a value that stays high fires again only after a new `holdFor`.

An alertmanager trigger can fire only on an operator that serves the webhook receiver, which it
does only with a bearer token file: otherwise the AlertReceiver condition says so (with one
Event), and a policy with no other trigger is not Armed, however the guards stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from modeldeploy_operator.api import ConditionStatus, ModelDeployment, parse_duration
from modeldeploy_operator.api.cron import parse_cron
from modeldeploy_operator.api.retraining import (
    AlertmanagerTrigger,
    AlertOccurrence,
    RegistryRef,
    RetrainingPolicy,
    RetrainingPolicyStatus,
    RetrainingRun,
    RetrainingRunSpec,
    RunPhase,
    ScheduleTrigger,
    TriggerRecord,
    TriggerSnapshot,
)
from modeldeploy_operator.api.status import Condition
from modeldeploy_operator.retraining.alerts import Alert, named_by
from modeldeploy_operator.rollout.plan import Event

ARMED: Final = "Armed"
COOLING_DOWN: Final = "CoolingDown"
SUSPENDED: Final = "Suspended"
ALERT_RECEIVER: Final = "AlertReceiver"
RECEIVER_SERVED: Final = "ReceiverServed"
RECEIVER_TOKEN_MISSING: Final = "AlertReceiverTokenMissing"
RECEIVER_TOKEN_MISSING_MESSAGE: Final = (
    "triggers.alertmanager can never fire: this operator serves no Alertmanager receiver, which "
    "it serves only with a bearer token. Start it with --alertmanager-token-file PATH (env "
    "MODELDEPLOY_ALERTMANAGER_TOKEN_FILE), or install the chart with "
    "alertmanagerReceiver.enabled=true and alertmanagerReceiver.tokenSecret.name=SECRET"
)
METRIC_TRIGGER: Final = "metric"
ALERTMANAGER_TRIGGER: Final = "alertmanager"
SCHEDULE_TRIGGER: Final = "schedule"


@dataclass(frozen=True)
class TriggerReading:
    """The trigger's value now: a number, None for no data, or why Prometheus did not answer."""

    query: str
    value: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class NewRun:
    name: str
    spec: RetrainingRunSpec


@dataclass(frozen=True)
class PolicyPlan:
    status: RetrainingPolicyStatus
    new_run: NewRun | None = None
    events: list[Event] = field(default_factory=list)


def run_name(policy: str, fired_at: datetime) -> str:
    return f"{policy}-{int(fired_at.timestamp())}"


def is_finished(run: RetrainingRun) -> bool:
    return run.status.phase is not None and run.status.phase.finished


def consecutive_failures(policy: RetrainingPolicy, runs: Sequence[RetrainingRun]) -> int:
    """Finished runs of the policy's current generation that did not promote, newest first,
    up to the first one that did."""
    finished = sorted(
        (
            run
            for run in runs
            if run.spec.policy_generation == policy.metadata.generation and is_finished(run)
        ),
        key=lambda run: run.spec.trigger.fired_at,
        reverse=True,
    )
    count = 0
    for run in finished:
        if run.status.phase == RunPhase.PROMOTED:
            break
        count += 1
    return count


def next_eligible(
    policy: RetrainingPolicy, runs: Sequence[RetrainingRun], now: datetime
) -> tuple[datetime | None, str]:
    """The earliest time the cooldown and maxRuns allow another run (None: now), and which
    guard sets it."""
    guards = policy.spec.guards
    starts = sorted(run.spec.trigger.fired_at for run in runs)
    candidates: list[tuple[datetime, str]] = []
    if starts:
        end = starts[-1] + timedelta(seconds=parse_duration(guards.cooldown))
        candidates.append((end, f"cooling down for {guards.cooldown} after the last run"))
    window = timedelta(seconds=parse_duration(guards.window))
    recent = [start for start in starts if start > now - window]
    if len(recent) >= guards.max_runs:
        # The window admits another run once enough of its runs have aged out of it.
        end = recent[len(recent) - guards.max_runs] + window
        candidates.append((end, f"{len(recent)} runs within {guards.window} (maxRuns)"))
    due = [(end, why) for end, why in candidates if end > now]
    if not due:
        return None, ""
    return max(due)


def _condition(
    old: Sequence[Condition], kind: str, holds: bool, reason: str, message: str, now: datetime
) -> Condition:
    status = ConditionStatus.TRUE if holds else ConditionStatus.FALSE
    previous = next((c for c in old if c.type == kind), None)
    since = previous.last_transition_time if previous and previous.status == status else now
    return Condition(
        type=kind, status=status, reason=reason, message=message, last_transition_time=since
    )


def _follows_alias(target: ModelDeployment | None) -> str | None:
    """Why the target cannot be retrained (None: it can)."""
    if target is None:
        return "the target ModelDeployment does not exist"
    source = target.spec.model.source
    if source is None or source.mlflow.follow.alias is None:
        return "the target does not follow an MLflow alias (spec.model.source.mlflow.follow)"
    return None


@dataclass(frozen=True)
class Firing:
    """A trigger that fires this pass: what a run's snapshot and the status record of it."""

    source: str
    description: str
    value: float | None = None
    threshold: float | None = None
    held_since: datetime | None = None
    query: str | None = None
    alert: AlertOccurrence | None = None
    scheduled_time: datetime | None = None

    def snapshot(self, now: datetime) -> TriggerSnapshot:
        return TriggerSnapshot(
            source=self.source, fired_at=now, value=self.value, threshold=self.threshold,
            held_since=self.held_since, query=self.query, alert=self.alert,
            scheduled_time=self.scheduled_time,
        )  # fmt: skip

    def record(self, now: datetime, run: str | None, suppressed: str | None) -> TriggerRecord:
        return TriggerRecord(
            time=now, source=self.source, value=self.value, threshold=self.threshold,
            held_since=self.held_since, query=self.query, alert=self.alert,
            scheduled_time=self.scheduled_time, run=run, suppressed=suppressed,
        )  # fmt: skip

    def recorded_in(self, record: TriggerRecord | None) -> bool:
        """Whether `record` is about this same firing (one suppression is reported once)."""
        if record is None or record.source != self.source:
            return False
        if self.source == METRIC_TRIGGER:
            return record.held_since == self.held_since
        if self.source == ALERTMANAGER_TRIGGER:
            return record.alert == self.alert
        return record.scheduled_time == self.scheduled_time


def _alert_firing(
    trigger: AlertmanagerTrigger | None, alerts: Sequence[Alert], runs: Sequence[RetrainingRun]
) -> Firing | None:
    """The first firing alert the trigger names that has started no run yet."""
    if trigger is None:
        return None
    started = {run.spec.trigger.alert for run in runs if run.spec.trigger.alert is not None}
    for alert in alerts:
        if alert.firing and named_by(trigger, alert) and alert.occurrence not in started:
            return Firing(
                ALERTMANAGER_TRIGGER,
                f"alert {alert.name} firing since {alert.starts_at:%H:%M:%SZ}",
                alert=alert.occurrence,
            )
    return None


def _schedule(
    trigger: ScheduleTrigger | None, last: datetime | None, now: datetime
) -> tuple[Firing | None, datetime | None, datetime | None]:
    """The scheduled time that came since `last` (at most one: times missed while the operator
    was away fire once, as the latest of them), the new `lastScheduleTime` and the next time.
    A schedule seen for the first time starts counting now: it does not fire for a time that
    passed before it was written."""
    if trigger is None:
        return None, None, None
    schedule = parse_cron(trigger.cron, trigger.time_zone)
    if last is None:
        return None, now, schedule.next(now)
    due = schedule.previous(now)
    if due is None or due <= last:
        return None, last, schedule.next(now)
    description = f"schedule {trigger.cron!r} at {due:%Y-%m-%dT%H:%M:%SZ}"
    return Firing(SCHEDULE_TRIGGER, description, scheduled_time=due), due, schedule.next(now)


def plan_policy(
    policy: RetrainingPolicy,
    runs: Sequence[RetrainingRun],
    target: ModelDeployment | None,
    reading: TriggerReading | None,
    now: datetime,
    evaluator_image: str,
    alerts: Sequence[Alert] = (),
    *,
    serves_alerts: bool,
) -> PolicyPlan:
    """`reading`: the metric trigger's value (None when the policy has none); `alerts`: those
    Alertmanager delivered since the last pass; `serves_alerts`: whether this operator serves
    the Alertmanager receiver (it was given a token file)."""
    spec, old = policy.spec, policy.status
    held_since: datetime | None = None
    firings: list[Firing] = []
    trigger = spec.triggers.metric
    if trigger is not None and reading is not None:
        above = reading.value is not None and reading.value > trigger.above
        if reading.error is not None:
            held_since = old.held_since  # not knowing is not "below": the hold is kept
        else:
            held_since = (old.held_since or now) if above else None
        if (
            held_since is not None
            and reading.value is not None
            and (now - held_since).total_seconds() >= parse_duration(trigger.hold_for)
        ):
            firings.append(
                Firing(
                    METRIC_TRIGGER,
                    f"{METRIC_TRIGGER} {reading.value:.4g} above {trigger.above:g} since "
                    f"{held_since:%H:%M:%SZ}",
                    value=reading.value,
                    threshold=trigger.above,
                    held_since=held_since,
                    query=reading.query,
                )
            )
    alert = _alert_firing(spec.triggers.alertmanager, alerts, runs)
    if alert is not None:
        firings.append(alert)
    scheduled, last_schedule_time, next_schedule_time = _schedule(
        spec.triggers.schedule, old.last_schedule_time, now
    )
    if scheduled is not None:
        firings.append(scheduled)

    failures = consecutive_failures(policy, runs)
    suspended = failures >= spec.guards.suspend_after_failures
    active = sorted(run.metadata.name for run in runs if not is_finished(run))
    eligible_at, cooling_why = next_eligible(policy, runs, now)
    not_retrainable = _follows_alias(target)
    rolling_out = target is not None and target.status.canary_version is not None

    blocked: tuple[str, str] | None = None
    if not_retrainable is not None:
        blocked = ("TargetNotFollowingAlias", not_retrainable)
    elif suspended:
        blocked = (SUSPENDED, f"{failures} runs in a row did not promote; edit the policy")
    elif active:
        blocked = ("RunInProgress", f"run {active[0]} is in progress")
    elif rolling_out:
        assert target is not None
        blocked = ("RolloutInProgress", f"{target.metadata.name} is rolling out")
    elif eligible_at is not None:
        blocked = (COOLING_DOWN, f"{cooling_why}, until {eligible_at:%Y-%m-%dT%H:%M:%SZ}")

    events: list[Event] = []
    new_run: NewRun | None = None
    last_trigger = old.last_trigger
    if firings and blocked is None:
        # One run per pass: the first trigger that fires starts it; the run answers the others.
        firing = firings[0]
        assert target is not None
        source = target.spec.model.source
        assert source is not None and source.mlflow.follow.alias is not None
        name = run_name(policy.metadata.name, now)
        new_run = NewRun(
            name,
            RetrainingRunSpec(
                policy=policy.metadata.name,
                policy_generation=policy.metadata.generation,
                target_ref=spec.target_ref,
                registry=RegistryRef(
                    tracking_uri=source.mlflow.tracking_uri,
                    registered_model=source.mlflow.registered_model,
                    alias=source.mlflow.follow.alias,
                    credentials_secret_ref=source.mlflow.credentials_secret_ref,
                ),
                trigger=firing.snapshot(now),
                training=spec.training,
                evaluation=spec.evaluation,
                evaluator_image=spec.evaluation.evaluator_image or evaluator_image,
            ),
        )
        last_trigger = firing.record(now, name, None)
        events.append(Event("RunStarted", f"{firing.description}: started run {name}"))
        held_since = None
        active = [name]
        eligible_at, cooling_why = (
            now + timedelta(seconds=parse_duration(spec.guards.cooldown)),
            f"cooling down for {spec.guards.cooldown} after the last run",
        )
        blocked = ("RunInProgress", f"run {name} is in progress")
    elif firings and blocked is not None:
        # Each firing is reported once; the status keeps the one it already records (else the
        # first), so two triggers held back together do not take turns in it every pass.
        for firing in firings:
            if not firing.recorded_in(last_trigger):
                events.append(
                    Event("TriggerSuppressed", f"{firing.description}: no run, {blocked[1]}")
                )
        kept = next((f for f in firings if f.recorded_in(last_trigger)), None)
        if kept is None:
            last_trigger = firings[0].record(now, None, blocked[1])
        elif last_trigger is not None and last_trigger.suppressed != blocked[1]:
            last_trigger = kept.record(now, None, blocked[1])

    unserved = spec.triggers.alertmanager is not None and not serves_alerts
    disarmed = blocked
    if unserved and spec.triggers.metric is None and spec.triggers.schedule is None:
        # Nothing can fire at all: that outlasts any guard, so it is what Armed says.
        disarmed = (RECEIVER_TOKEN_MISSING, RECEIVER_TOKEN_MISSING_MESSAGE)
    conditions = [
        _condition(
            old.conditions, ARMED, disarmed is None,
            "Armed" if disarmed is None else disarmed[0],
            "a trigger that fires starts a run" if disarmed is None else disarmed[1],
            now,
        ),
        _condition(
            old.conditions, COOLING_DOWN, eligible_at is not None,
            COOLING_DOWN if eligible_at is not None else "Eligible",
            cooling_why if eligible_at is not None else "no cooldown or maxRuns holds runs back",
            now,
        ),
        _condition(
            old.conditions, SUSPENDED, suspended,
            "ConsecutiveFailures" if suspended else "Running",
            f"{failures} runs in a row did not promote (suspendAfterFailures "
            f"{spec.guards.suspend_after_failures}); edit the policy to arm it again"
            if suspended else f"{failures} runs in a row did not promote",
            now,
        ),
    ]  # fmt: skip
    if suspended and not any(c.type == SUSPENDED and c.status == "True" for c in old.conditions):
        events.append(Event("Suspended", conditions[2].message or "", warning=True))
    if spec.triggers.alertmanager is not None:
        conditions.append(
            _condition(
                old.conditions, ALERT_RECEIVER, not unserved,
                RECEIVER_TOKEN_MISSING if unserved else RECEIVER_SERVED,
                RECEIVER_TOKEN_MISSING_MESSAGE if unserved
                else "this operator serves the Alertmanager receiver",
                now,
            )
        )  # fmt: skip
        was_unserved = any(c.type == ALERT_RECEIVER and c.status == "False" for c in old.conditions)
        if unserved and not was_unserved:
            events.append(
                Event(RECEIVER_TOKEN_MISSING, RECEIVER_TOKEN_MISSING_MESSAGE, warning=True)
            )
    status = RetrainingPolicyStatus(
        observed_generation=policy.metadata.generation,
        held_since=held_since,
        last_trigger=last_trigger,
        next_eligible_time=eligible_at,
        last_schedule_time=last_schedule_time,
        next_schedule_time=next_schedule_time,
        active_run=active[0] if active else None,
        consecutive_failures=failures,
        conditions=conditions,
    )
    return PolicyPlan(status, new_run, events)
