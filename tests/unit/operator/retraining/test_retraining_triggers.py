"""The alertmanager and schedule triggers in the policy's plan, on a fake clock: one run per
alert firing however often Alertmanager repeats it, one run per scheduled time across restarts,
and the same guards as the metric trigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from modeldeploy_operator.api.retraining import (
    AlertOccurrence,
    RetrainingPolicy,
    RetrainingRun,
    RunPhase,
)
from modeldeploy_operator.retraining.alerts import Alert
from modeldeploy_operator.retraining.policy import PolicyPlan, plan_policy

from tests.unit.operator.retraining.retraining_models import (
    EVALUATOR_IMAGE,
    T0,
    policy,
    run,
    seconds,
    target,
)

ALERTING = {"alertmanager": {"alertName": "ModelDrift", "matchers": {"namespace": "models"}}}
# T0 is Thursday 2026-01-01 12:00 UTC: this schedule's times are 12:30 and 13:00, 13:30...
SCHEDULED = {"schedule": {"cron": "0,30 * * * *"}}
FINGERPRINT = "4f2a9c0d1e3b5a77"


def alert(
    fingerprint: str = FINGERPRINT,
    starts_at: datetime = T0,
    firing: bool = True,
    **labels: str,
) -> Alert:
    return Alert(
        fingerprint, starts_at, firing, {"alertname": "ModelDrift", "namespace": "models", **labels}
    )


def step(
    current: RetrainingPolicy,
    at: float,
    alerts: Sequence[Alert] = (),
    runs: Sequence[RetrainingRun] = (),
    *,
    serves_alerts: bool = True,
) -> tuple[RetrainingPolicy, PolicyPlan]:
    """One pass at T0 + `at` seconds (no metric reading) by an operator that serves the
    Alertmanager receiver, or not; the policy as the next pass reads it."""
    plan = plan_policy(
        current, runs, target(), None, T0 + seconds(at), EVALUATOR_IMAGE, alerts,
        serves_alerts=serves_alerts,
    )  # fmt: skip
    return current.model_copy(update={"status": plan.status}), plan


def condition(plan: PolicyPlan, kind: str) -> tuple[str, str | None, str | None]:
    [found] = [c for c in plan.status.conditions if c.type == kind]
    return found.status.value, found.reason, found.message


def as_run(plan: PolicyPlan, phase: RunPhase | None = None) -> RetrainingRun:
    """The run the plan created, as the next pass lists it."""
    assert plan.new_run is not None
    body: dict[str, Any] = run(fired_at=plan.new_run.spec.trigger.fired_at).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    body["spec"] = plan.new_run.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["metadata"]["name"] = plan.new_run.name
    body["status"] = {"phase": phase.value} if phase else {}
    return RetrainingRun.model_validate(body)


def test_an_alert_starts_one_run_however_often_alertmanager_repeats_it() -> None:
    current, plan = step(policy(triggers=ALERTING), 0, [alert()])
    assert plan.new_run is not None
    trigger = plan.new_run.spec.trigger
    assert trigger.source == "alertmanager" and trigger.value is None
    assert trigger.alert == AlertOccurrence(
        name="ModelDrift", fingerprint=FINGERPRINT, starts_at=T0
    )
    assert [e.reason for e in plan.events] == ["RunStarted"]
    # The run failed at once and the cooldown is over: the same firing, repeated, starts nothing.
    runs = [as_run(plan, RunPhase.FAILED)]
    no_cooldown = policy(
        triggers=ALERTING,
        guards={"cooldown": "1s", "maxRuns": 100},
        status=current.status.model_dump(mode="json", by_alias=True),
    )
    for at in (5, 60, 3600):
        no_cooldown, again = step(no_cooldown, at, [alert()], runs)
        assert again.new_run is None and again.events == []
    # The alert resolved and fired again (a new start time): a new firing, a new run.
    _, refired = step(no_cooldown, 7200, [alert(starts_at=T0 + seconds(7000))], runs)
    assert refired.new_run is not None


def test_only_the_named_firing_alert_with_every_matcher_triggers() -> None:
    current = policy(triggers=ALERTING)
    for other in (
        alert(firing=False),
        alert(namespace="staging"),
        Alert(FINGERPRINT, T0, True, {"alertname": "Other", "namespace": "models"}),
        Alert(FINGERPRINT, T0, True, {"alertname": "ModelDrift"}),
    ):
        _, plan = step(current, 0, [other])
        assert plan.new_run is None and plan.events == []
    # A metric-only policy ignores alerts altogether.
    _, plan = step(policy(triggers={"metric": {"above": 0.2}}), 0, [alert()])
    assert plan.new_run is None


def test_a_held_back_alert_is_reported_once_and_starts_a_run_when_repeated_after_the_guard() -> (
    None
):
    first = run(fired_at=T0, phase=RunPhase.PROMOTED)  # cooldown 10m from T0
    current, plan = step(policy(triggers=ALERTING), 60, [alert()], [first])
    assert plan.new_run is None
    assert [e.reason for e in plan.events] == ["TriggerSuppressed"]
    last = plan.status.last_trigger
    assert last is not None and last.alert is not None and last.alert.fingerprint == FINGERPRINT
    assert "cooling down for 10m" in (last.suppressed or "")
    # Repeated inside the cooldown: no second Event, no status change.
    repeated, plan = step(current, 120, [alert()], [first])
    assert plan.events == [] and plan.status == current.status
    # A pass without notifications keeps the record.
    repeated, plan = step(repeated, 125, [], [first])
    assert plan.status == current.status
    # Repeated after the cooldown, still firing: the guards let it through.
    _, plan = step(repeated, 601, [alert()], [first])
    assert plan.new_run is not None
    assert plan.new_run.spec.trigger.alert is not None


def test_a_schedule_seen_first_starts_counting_then_fires_once_per_time() -> None:
    current, plan = step(policy(triggers=SCHEDULED), 0)
    assert plan.new_run is None
    assert plan.status.last_schedule_time == T0
    assert plan.status.next_schedule_time == T0 + seconds(1800)
    current, plan = step(current, 1799)
    assert plan.new_run is None
    current, plan = step(current, 1805)
    assert plan.new_run is not None
    assert plan.new_run.spec.trigger.source == "schedule"
    assert plan.new_run.spec.trigger.scheduled_time == T0 + seconds(1800)
    assert plan.status.last_schedule_time == T0 + seconds(1800)
    assert plan.status.next_schedule_time == T0 + seconds(3600)
    runs = [as_run(plan, RunPhase.PROMOTED)]
    # The next pass of the same operator, and a restarted one (it reads the same status):
    # the time is done.
    for at in (1810, 1900):
        _, again = step(current, at, runs=runs)
        assert again.new_run is None and again.events == []


def test_times_missed_while_the_operator_was_away_fire_once() -> None:
    current, _ = step(policy(triggers=SCHEDULED), 0)
    # Away from 12:00 to 14:10: 12:30, 13:00, 13:30 and 14:00 passed.
    current, plan = step(current, 2 * 3600 + 600)
    assert plan.new_run is not None
    assert plan.new_run.spec.trigger.scheduled_time == T0 + seconds(2 * 3600)
    _, plan = step(current, 2 * 3600 + 605, runs=[as_run(plan, RunPhase.PROMOTED)])
    assert plan.new_run is None


def test_a_scheduled_time_held_back_by_a_guard_is_spent_and_reported_once() -> None:
    active = run(fired_at=T0 - seconds(3600), phase=RunPhase.TRAINING)
    current, _ = step(policy(triggers=SCHEDULED), 0, runs=[active])
    current, plan = step(current, 1800, runs=[active])
    assert plan.new_run is None
    assert [e.reason for e in plan.events] == ["TriggerSuppressed"]
    last = plan.status.last_trigger
    assert last is not None and last.scheduled_time == T0 + seconds(1800)
    assert last.suppressed == f"run {active.metadata.name} is in progress"
    # The run ends: the spent time does not fire late; the next one does.
    ended = run(fired_at=T0 - seconds(3600), phase=RunPhase.PROMOTED)
    current, plan = step(current, 1900, runs=[ended])
    assert plan.new_run is None and plan.events == []
    _, plan = step(current, 3600, runs=[ended])
    assert plan.new_run is not None


def test_triggers_together_start_one_run_and_the_first_one_is_recorded() -> None:
    both = {**ALERTING, **SCHEDULED}
    current, _ = step(policy(triggers=both), 0)
    _, plan = step(current, 1800, [alert()])
    assert plan.new_run is not None
    assert plan.new_run.spec.trigger.source == "alertmanager"
    # The schedule's time is spent by that run.
    assert plan.status.last_schedule_time == T0 + seconds(1800)


def test_an_alert_trigger_the_operator_serves_no_receiver_for_is_reported_once() -> None:
    """The receiver is served only with a token file: without it the alert can never arrive,
    and the policy says so, naming the flag and the chart values that serve it."""
    current, plan = step(policy(triggers=ALERTING), 0, serves_alerts=False)
    status, reason, message = condition(plan, "Armed")
    assert (status, reason) == ("False", "AlertReceiverTokenMissing")
    assert message is not None
    for remedy in ("--alertmanager-token-file", "alertmanagerReceiver.tokenSecret.name"):
        assert remedy in message
    assert condition(plan, "AlertReceiver")[:2] == ("False", "AlertReceiverTokenMissing")
    assert [(e.reason, e.warning) for e in plan.events] == [("AlertReceiverTokenMissing", True)]
    # Still so on the next pass: reported, not announced again.
    _, plan = step(current, 60, serves_alerts=False)
    assert condition(plan, "Armed")[:2] == ("False", "AlertReceiverTokenMissing")
    assert plan.events == []


def test_other_triggers_keep_a_policy_armed_without_the_receiver() -> None:
    _, plan = step(policy(triggers={**ALERTING, **SCHEDULED}), 0, serves_alerts=False)
    assert condition(plan, "Armed")[:2] == ("True", "Armed")
    assert condition(plan, "AlertReceiver")[:2] == ("False", "AlertReceiverTokenMissing")
    assert [e.reason for e in plan.events] == ["AlertReceiverTokenMissing"]


def test_a_served_receiver_arms_the_alert_trigger() -> None:
    _, plan = step(policy(triggers=ALERTING), 0, serves_alerts=True)
    assert condition(plan, "Armed")[:2] == ("True", "Armed")
    assert condition(plan, "AlertReceiver")[:2] == ("True", "ReceiverServed")
    assert plan.events == []
    # A policy without an alertmanager trigger has nothing to say about the receiver.
    _, plan = step(policy(triggers=SCHEDULED), 0, serves_alerts=False)
    assert [c.type for c in plan.status.conditions] == ["Armed", "CoolingDown", "Suspended"]
