"""When a policy starts a run: the hold, each guard, suspension, and the status a user reads."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.api.retraining import RetrainingPolicy, RetrainingRun, RunPhase
from modeldeploy_operator.retraining.policy import PolicyPlan, TriggerReading, plan_policy

from tests.unit.operator.retraining.retraining_models import (
    EVALUATOR_IMAGE,
    T0,
    policy,
    run,
    seconds,
    target,
)

QUERY = "max(modeldeploy_feature_drift)"


def reading(value: float | None) -> TriggerReading:
    return TriggerReading(QUERY, value)


def step(
    current: RetrainingPolicy,
    value: float | None,
    at: float,
    runs: Sequence[RetrainingRun] = (),
    md: ModelDeployment | None = None,
) -> tuple[RetrainingPolicy, PolicyPlan]:
    """One pass at T0 + `at` seconds; the policy as the next pass reads it."""
    plan = plan_policy(
        current, runs, md or target(), reading(value), T0 + seconds(at), EVALUATOR_IMAGE,
        serves_alerts=True,
    )  # fmt: skip
    written = current.model_copy(update={"status": plan.status})
    return written, plan


def condition(plan: PolicyPlan, kind: str) -> tuple[str, str | None]:
    [found] = [c for c in plan.status.conditions if c.type == kind]
    return found.status.value, found.reason


def test_drift_held_for_the_duration_starts_exactly_one_run() -> None:
    current = policy()
    current, plan = step(current, 0.31, 0)
    assert plan.new_run is None and plan.status.held_since == T0
    current, plan = step(current, 0.35, 59)
    assert plan.new_run is None
    current, plan = step(current, 0.33, 60)
    assert plan.new_run is not None
    assert plan.new_run.name == f"iris-drift-{int((T0 + seconds(60)).timestamp())}"
    spec = plan.new_run.spec
    assert (spec.trigger.value, spec.trigger.threshold, spec.trigger.held_since) == (0.33, 0.2, T0)
    assert spec.registry.alias == "champion" and spec.registry.registered_model == "iris"
    assert spec.evaluator_image == EVALUATOR_IMAGE and spec.policy_generation == 1
    assert [e.reason for e in plan.events] == ["RunStarted"]
    assert plan.status.active_run == plan.new_run.name
    assert (
        plan.status.last_trigger is not None and plan.status.last_trigger.run == plan.new_run.name
    )
    assert condition(plan, "Armed") == ("False", "RunInProgress")
    assert condition(plan, "CoolingDown") == ("True", "CoolingDown")
    assert plan.status.next_eligible_time == T0 + seconds(60 + 600)


def test_a_dip_below_the_threshold_restarts_the_hold() -> None:
    current, _ = step(policy(), 0.31, 0)
    current, plan = step(current, 0.1, 30)
    assert plan.status.held_since is None
    current, plan = step(current, 0.31, 40)
    current, plan = step(current, 0.31, 90)
    assert plan.new_run is None  # held 50 s of 60
    _, plan = step(current, 0.31, 100)
    assert plan.new_run is not None


def test_no_data_is_not_drift_and_a_prometheus_error_keeps_the_hold() -> None:
    current, _ = step(policy(), 0.31, 0)
    error = TriggerReading(QUERY, error="connection refused")
    plan = plan_policy(
        current, [], target(), error, T0 + seconds(70), EVALUATOR_IMAGE, serves_alerts=True
    )
    assert plan.new_run is None and plan.status.held_since == T0
    _, plan = step(current, None, 70)
    assert plan.new_run is None and plan.status.held_since is None


def test_a_second_trigger_inside_the_cooldown_is_suppressed_once() -> None:
    first = run(fired_at=T0, phase=RunPhase.PROMOTED)
    current, _ = step(policy(), 0.4, 120, [first])
    current, plan = step(current, 0.4, 180, [first])
    assert plan.new_run is None
    assert [e.reason for e in plan.events] == ["TriggerSuppressed"]
    assert plan.status.last_trigger is not None
    assert plan.status.last_trigger.suppressed is not None
    assert "cooling down for 10m" in plan.status.last_trigger.suppressed
    assert condition(plan, "Armed") == ("False", "CoolingDown")
    # Still held, still cooling down: recorded once, no second Event.
    current, plan = step(current, 0.4, 240, [first])
    assert plan.new_run is None and plan.events == []
    # The cooldown over, the held trigger starts the next run.
    _, plan = step(current, 0.4, 601, [first])
    assert plan.new_run is not None
    assert condition(plan, "CoolingDown") == ("True", "CoolingDown")


def test_max_runs_in_the_window() -> None:
    runs = [run(fired_at=T0 + seconds(i * 3600), phase=RunPhase.PROMOTED) for i in range(3)]
    now = 3 * 3600.0
    current, _ = step(policy(), 0.4, now, runs)
    current, plan = step(current, 0.4, now + 60, runs)
    assert plan.new_run is None
    assert plan.status.next_eligible_time == T0 + seconds(24 * 3600)
    assert plan.status.last_trigger is not None
    assert "3 runs within 24h (maxRuns)" in (plan.status.last_trigger.suppressed or "")


def test_no_run_while_one_is_in_progress() -> None:
    active = run(fired_at=T0 - seconds(3600), phase=RunPhase.EVALUATING)
    current, _ = step(policy(), 0.4, 0, [active])
    _, plan = step(current, 0.4, 60, [active])
    assert plan.new_run is None and plan.status.active_run == active.metadata.name
    assert condition(plan, "Armed") == ("False", "RunInProgress")


def test_no_run_while_the_target_rolls_out() -> None:
    rolling = target(canary="7")
    current, _ = step(policy(), 0.4, 0, md=rolling)
    _, plan = step(current, 0.4, 60, md=rolling)
    assert plan.new_run is None
    assert condition(plan, "Armed") == ("False", "RolloutInProgress")


def test_a_target_that_follows_no_alias_cannot_be_retrained() -> None:
    pinned = target(follow_alias=False)
    current, _ = step(policy(), 0.4, 0, md=pinned)
    _, plan = step(current, 0.4, 60, md=pinned)
    assert plan.new_run is None
    assert condition(plan, "Armed") == ("False", "TargetNotFollowingAlias")


@pytest.mark.parametrize(
    ("phases", "suspended"),
    [
        ([RunPhase.FAILED, RunPhase.FAILED, RunPhase.FAILED], True),
        ([RunPhase.GATE_FAILED, RunPhase.ROLLED_BACK, RunPhase.FAILED], True),
        ([RunPhase.FAILED, RunPhase.FAILED], False),
        # Oldest first: a promotion resets the count.
        ([RunPhase.FAILED, RunPhase.FAILED, RunPhase.PROMOTED, RunPhase.FAILED], False),
    ],
)
def test_three_failed_runs_suspend(phases: list[RunPhase], suspended: bool) -> None:
    runs = [
        run(fired_at=T0 - seconds(86400 * (len(phases) - i)), phase=phase)
        for i, phase in enumerate(phases)
    ]
    current, _ = step(policy(), 0.4, 0, runs)
    _, plan = step(current, 0.4, 60, runs)
    assert (condition(plan, "Suspended")[0] == "True") is suspended
    assert (plan.new_run is None) is suspended
    if suspended:
        assert condition(plan, "Armed") == ("False", "Suspended")


def test_suspension_raises_one_warning_and_editing_the_policy_arms_it_again() -> None:
    runs = [run(fired_at=T0 - seconds(86400 * (3 - i)), phase=RunPhase.FAILED) for i in range(3)]
    current, plan = step(policy(), 0.0, 0, runs)
    assert [(e.reason, e.warning) for e in plan.events] == [("Suspended", True)]
    current, plan = step(current, 0.0, 10, runs)
    assert plan.events == []
    edited = policy(generation=2, status=current.status.model_dump(mode="json", by_alias=True))
    _, plan = step(edited, 0.0, 20, runs)
    assert condition(plan, "Suspended") == ("False", "Running")
    assert condition(plan, "Armed") == ("True", "Armed")


def test_an_unchanged_world_keeps_the_condition_times() -> None:
    current, first = step(policy(), 0.0, 0)
    _, second = step(current, 0.0, 10)
    assert first.status.conditions == second.status.conditions


def test_a_value_that_moves_without_crossing_the_threshold_changes_no_status() -> None:
    """Zero writes at steady state: a drift series moves every scrape; the status changes only
    when the hold starts or ends, or a trigger fires."""
    below, _ = step(policy(), 0.11, 0)
    _, plan = step(below, 0.13, 5)
    assert plan.status == below.status
    above, _ = step(below, 0.31, 10)
    _, plan = step(above, 0.35, 15)
    assert plan.status == above.status
