"""The rollout state machine, step by step, with the clock and the observed world as inputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modeldeploy_operator.api import (
    AnalysisResult,
    ModelDeployment,
    PauseCondition,
    PauseReason,
)
from modeldeploy_operator.health import DeploymentHealth
from modeldeploy_operator.rollout.analysis.verdict import evaluate
from modeldeploy_operator.rollout.context import RolloutContext
from modeldeploy_operator.rollout.machine import Stage, canary_stage, plan_tracks, stage_of
from modeldeploy_operator.rollout.plan import AnalysisUnavailable, Plan, Routing
from modeldeploy_operator.rollout.routers.replica_ratio import ReplicaRatioRouter
from modeldeploy_operator.status import compute_status

from tests.unit.operator.factories import md_body

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
ROUTING = Routing(split_by_service=True, canary_replicas=ReplicaRatioRouter().canary_replicas)
ROLLOUT = {"steps": [10, 50], "stepInterval": "60s", "progressDeadline": "10m"}


def healthy(version: str, replicas: int = 2, ready: int | None = None) -> DeploymentHealth:
    ready = replicas if ready is None else ready
    return DeploymentHealth(
        name=f"iris-v{version}",
        desired=replicas,
        replicas=replicas,
        ready=ready,
        available=ready,
        updated=replicas,
        current_generation_observed=True,
        progress_deadline_exceeded=False,
    )


def md(version: str, status: dict[str, Any] | None = None, **spec: Any) -> ModelDeployment:
    body = md_body(
        model={"version": version, "storageUri": f"s3://models/iris/{version}/model.joblib"},
        replicas=2,
        **{"rollout": ROLLOUT, **spec},
    )
    body["status"] = status or {}
    return ModelDeployment.model_validate(body)


def advance(
    model: ModelDeployment, plan: Plan, health: dict[str, DeploymentHealth], now: datetime
) -> ModelDeployment:
    """Write the plan's status back into the object, as the reconciler does."""
    change = compute_status(
        model,
        plan,
        health,
        now.timestamp(),
        model.status.model_dump(mode="json", by_alias=True, exclude_none=True),
    )
    body = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"] = {k: v for k, v in change.status.items() if v is not None}
    return ModelDeployment.model_validate(body)


def stable_at(version: str) -> ModelDeployment:
    first = md(version)
    plan = plan_tracks(first, {version: healthy(version)}, T0, ROUTING)
    return advance(first, plan, {version: healthy(version)}, T0)


def bump(model: ModelDeployment, version: str, **spec: Any) -> ModelDeployment:
    body = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["model"]["version"] = version
    body["spec"]["model"]["storageUri"] = f"s3://models/iris/{version}/model.joblib"
    body["spec"].update(spec)
    return ModelDeployment.model_validate(body)


def test_first_version_is_stable_once_ready() -> None:
    first = md("1")
    pending = plan_tracks(first, {}, T0, ROUTING)
    assert pending.stable is None and pending.in_progress
    assert [t.version for t in pending.tracks] == ["1"]
    ready = plan_tracks(first, {"1": healthy("1")}, T0, ROUTING)
    assert ready.stable is not None and ready.stable.model.version == "1"
    assert not ready.in_progress


def test_a_new_version_warms_up_with_no_traffic() -> None:
    model = bump(stable_at("1"), "2")
    plan = plan_tracks(model, {"1": healthy("1")}, T0, ROUTING)
    assert [(t.track, t.version) for t in plan.tracks] == [("stable", "1"), ("canary", "2")]
    assert plan.rollout.weight == 0 and plan.rollout.step is None
    assert plan.traffic_versions == ["1"]
    assert [e.reason for e in plan.events] == ["RolloutStarted"]
    canary = plan.canary_track
    assert canary is not None and canary.replicas == 1  # ready before it gets traffic


def test_steps_advance_on_time_and_promote_after_the_last() -> None:
    health = {"1": healthy("1"), "2": healthy("2", replicas=1)}
    model = bump(stable_at("1"), "2")
    plan = plan_tracks(model, health, T0, ROUTING)  # warming, canary already ready
    assert plan.rollout.step == 0 and plan.rollout.weight == 10
    model = advance(model, plan, health, T0)

    early = plan_tracks(model, health, T0 + timedelta(seconds=30), ROUTING)
    assert early.rollout.step == 0 and early.requeue_after == pytest.approx(30, abs=1)

    later = T0 + timedelta(seconds=61)
    plan = plan_tracks(model, health, later, ROUTING)
    assert plan.rollout.step == 1 and plan.rollout.weight == 50
    assert plan.traffic_versions == ["1", "2"]  # ReplicaRatio: both tracks selected
    model = advance(model, plan, health, later)

    final = plan_tracks(model, health, later + timedelta(seconds=61), ROUTING)
    assert final.stable is not None and final.stable.model.version == "2"
    assert [t.version for t in final.tracks] == ["2"]
    assert [e.reason for e in final.events] == ["Promoted"]


def test_replaying_the_same_status_never_double_steps() -> None:
    health = {"1": healthy("1"), "2": healthy("2", replicas=1)}
    model = bump(stable_at("1"), "2")
    model = advance(model, plan_tracks(model, health, T0, ROUTING), health, T0)
    at = T0 + timedelta(seconds=61)
    first = plan_tracks(model, health, at, ROUTING)
    again = plan_tracks(model, health, at, ROUTING)  # e.g. after a restart, same status
    assert first.rollout == again.rollout and first.rollout.step == 1


def result(passed: bool) -> AnalysisResult:
    return AnalysisResult(time=T0, canary_version="2", step=0, passed=passed, message="sr 42%")


def at_first_step(**spec: Any) -> tuple[ModelDeployment, dict[str, DeploymentHealth]]:
    health = {"1": healthy("1"), "2": healthy("2", replicas=1)}
    model = bump(stable_at("1"), "2", **spec)
    model = advance(model, plan_tracks(model, health, T0, ROUTING), health, T0)
    return model, health


ANALYSIS = {"rollout": {**ROLLOUT, "analysis": {"successRate": {"min": 99}, "maxFailedChecks": 2}}}


def test_analysis_is_requested_when_a_step_is_due() -> None:
    model, health = at_first_step(**ANALYSIS)
    plan = plan_tracks(model, health, T0 + timedelta(seconds=61), ROUTING)
    assert plan.analysis_due and plan.rollout.step == 0


def test_failed_checks_accumulate_then_roll_back() -> None:
    model, health = at_first_step(**ANALYSIS)
    at = T0 + timedelta(seconds=61)
    once = plan_tracks(model, health, at, ROUTING, analysis=("fail", result(False)))
    assert once.failure is None and once.rollout.failed_checks == 1
    assert [e.reason for e in once.events] == ["AnalysisFailed"]
    model = advance(model, once, health, at)

    at2 = at + timedelta(seconds=61)
    twice = plan_tracks(model, health, at2, ROUTING, analysis=("fail", result(False)))
    assert twice.failure is not None and twice.failure.reason == "AnalysisFailed"
    assert [t.version for t in twice.tracks] == ["1"] and twice.traffic_versions == ["1"]
    model = advance(model, twice, health, at2)
    assert model.status.phase == "Failed"
    assert model.status.failed_serving_hash == model.spec.serving().fingerprint()

    # The same spec is not retried; a new version is.
    still = plan_tracks(model, health, at2 + timedelta(hours=1), ROUTING)
    assert still.failure is not None and [t.version for t in still.tracks] == ["1"]
    retry = plan_tracks(bump(model, "3"), health, at2, ROUTING)
    assert retry.failure is None and retry.canary_track is not None


def test_hold_waits_until_the_progress_deadline() -> None:
    model, health = at_first_step(**ANALYSIS)
    hold = ("hold", result(False))
    waiting = plan_tracks(model, health, T0 + timedelta(seconds=61), ROUTING, analysis=hold)
    assert waiting.failure is None and waiting.rollout.step == 0
    late = plan_tracks(model, health, T0 + timedelta(minutes=11), ROUTING, analysis=hold)
    assert late.failure is not None and late.failure.reason == "AnalysisNoData"


OUTAGE = AnalysisUnavailable(
    "cannot reach Prometheus at http://prometheus:9090/api/v1/query: Connection refused"
)


def progressing(model: ModelDeployment) -> dict[str, Any]:
    return next(
        c.model_dump(mode="json", by_alias=True)
        for c in model.status.conditions
        if c.type == "Progressing"
    )


def test_an_unreachable_prometheus_holds_the_step_without_counting_a_check() -> None:
    model, health = at_first_step(**ANALYSIS)
    at = T0 + timedelta(seconds=61)
    due = plan_tracks(model, health, at, ROUTING)
    assert due.analysis_due
    held = plan_tracks(model, health, at, ROUTING, analysis=OUTAGE)
    assert held.failure is None and not held.analysis_due
    assert held.rollout.step == 0 and held.rollout.weight == 10
    assert held.rollout.failed_checks == 0 and held.rollout.step_started_at == T0
    assert held.rollout.last_analysis is None  # no verdict to report
    assert [t.version for t in held.tracks] == ["1", "2"]
    assert held.requeue_after == pytest.approx(60)  # asks again after one stepInterval
    assert [(e.reason, e.warning) for e in held.events] == [("AnalysisUnavailable", True)]
    assert "cannot reach Prometheus at http://prometheus:9090" in held.events[0].message
    model = advance(model, held, health, at)
    condition = progressing(model)
    assert (condition["status"], condition["reason"]) == ("True", "AnalysisUnavailable")
    assert "cannot reach Prometheus at http://prometheus:9090" in condition["message"]
    assert model.status.failed_checks == 0 and model.status.phase == "Progressing"

    # Still down a step interval later: still held, and the Event is not repeated.
    again = at + timedelta(seconds=60)
    still = plan_tracks(model, health, again, ROUTING, analysis=OUTAGE)
    assert still.failure is None and still.rollout.failed_checks == 0 and still.events == []
    model = advance(model, still, health, again)

    # Prometheus is back: the next analysis is judged as usual and the step advances.
    back = again + timedelta(seconds=60)
    resumed = plan_tracks(model, health, back, ROUTING, analysis=("pass", result(True)))
    assert resumed.failure is None and resumed.rollout.step == 1
    assert [e.reason for e in resumed.events] == ["StepAdvanced"]
    model = advance(model, resumed, health, back)
    assert progressing(model)["reason"] == "CanaryStep"


def test_no_data_just_after_an_outage_restarts_the_step_instead_of_counting_a_check() -> None:
    """A Prometheus back from an outage has no samples for the time it was down: its first
    answers say "no data" for a window that spans the outage. That is no verdict on the canary
    (even under noData Fail): the step starts again, so the next analysis judges a full window
    of fresh data, and then no data counts as usual."""
    model, health = at_first_step(
        rollout={**ROLLOUT, "analysis": {"successRate": {"min": 99}, "maxFailedChecks": 1}}
    )
    at = T0 + timedelta(seconds=61)
    model = advance(model, plan_tracks(model, health, at, ROUTING, analysis=OUTAGE), health, at)

    back = at + timedelta(seconds=60)
    s = model.spec.rollout.analysis
    assert s is not None and s.no_data == "Fail"
    no_data = evaluate(s, {"successRate": None}, "2", 0, back)
    assert no_data[0] == "fail"
    restarted = plan_tracks(model, health, back, ROUTING, analysis=no_data)
    assert restarted.failure is None and restarted.rollout.failed_checks == 0
    assert restarted.rollout.step == 0 and restarted.rollout.weight == 10
    assert restarted.rollout.step_started_at == back
    assert restarted.requeue_after == pytest.approx(60)
    assert [(e.reason, e.warning) for e in restarted.events] == [("AnalysisRestarted", False)]
    model = advance(model, restarted, health, back)
    assert progressing(model)["reason"] == "CanaryStep"

    # A full window later, no data is what noData says again: a failed check (the limit, 1).
    later = back + timedelta(seconds=61)
    assert plan_tracks(model, health, later, ROUTING).analysis_due
    still = evaluate(s, {"successRate": None}, "2", 0, later)
    counted = plan_tracks(model, health, later, ROUTING, analysis=still)
    assert counted.failure is not None and counted.failure.reason == "AnalysisFailed"


def test_a_measured_failure_just_after_an_outage_counts() -> None:
    """Only the want of data is excused: a value below the threshold is a verdict."""
    model, health = at_first_step(
        rollout={**ROLLOUT, "analysis": {"successRate": {"min": 99}, "maxFailedChecks": 1}}
    )
    at = T0 + timedelta(seconds=61)
    model = advance(model, plan_tracks(model, health, at, ROUTING, analysis=OUTAGE), health, at)
    back = at + timedelta(seconds=60)
    s = model.spec.rollout.analysis
    assert s is not None
    measured = evaluate(s, {"successRate": 42.0}, "2", 0, back)
    rolled_back = plan_tracks(model, health, back, ROUTING, analysis=measured)
    assert rolled_back.failure is not None and rolled_back.failure.reason == "AnalysisFailed"


def test_an_outage_past_the_progress_deadline_rolls_back() -> None:
    model, health = at_first_step(**ANALYSIS)
    late = plan_tracks(model, health, T0 + timedelta(minutes=11), ROUTING, analysis=OUTAGE)
    assert late.failure is not None and late.failure.reason == "ProgressDeadlineExceeded"
    assert "10m" in late.failure.message
    assert "cannot reach Prometheus at http://prometheus:9090" in late.failure.message
    assert [t.version for t in late.tracks] == ["1"] and late.traffic_versions == ["1"]
    assert late.rollout.failed_checks == 0


def test_a_canary_that_never_becomes_ready_rolls_back_after_the_deadline() -> None:
    model = bump(stable_at("1"), "2")
    stuck = {"1": healthy("1"), "2": healthy("2", replicas=1, ready=0)}
    model = advance(model, plan_tracks(model, stuck, T0, ROUTING), stuck, T0)
    assert plan_tracks(model, stuck, T0 + timedelta(minutes=5), ROUTING).failure is None
    late = plan_tracks(model, stuck, T0 + timedelta(minutes=11), ROUTING)
    assert late.failure is not None and late.failure.reason == "ProgressDeadlineExceeded"


def test_setting_the_version_back_aborts_without_analysis() -> None:
    model, health = at_first_step(**ANALYSIS)
    back = bump(model, "1")
    plan = plan_tracks(back, health, T0 + timedelta(seconds=61), ROUTING)
    assert not plan.analysis_due and plan.failure is None
    assert [t.version for t in plan.tracks] == ["1"]
    assert [e.reason for e in plan.events] == ["RolloutAborted"]


def test_a_newer_version_mid_rollout_restarts_from_stable() -> None:
    model, health = at_first_step()
    newer = bump(model, "3")
    plan = plan_tracks(newer, health, T0 + timedelta(seconds=5), ROUTING)
    assert [(t.track, t.version) for t in plan.tracks] == [("stable", "1"), ("canary", "3")]
    assert plan.rollout.step is None and plan.rollout.weight == 0
    assert [e.reason for e in plan.events] == ["RolloutRestarted", "RolloutStarted"]


def test_paused_holds_the_step() -> None:
    model, health = at_first_step(rollout={**ROLLOUT, "paused": True})
    plan = plan_tracks(model, health, T0 + timedelta(hours=2), ROUTING)
    assert plan.rollout.step == 0 and plan.rollout.paused and plan.requeue_after is None


def test_a_pause_request_is_written_as_a_pause_condition_and_held_until_resumed() -> None:
    model, health = at_first_step()
    paused = plan_tracks(model, health, T0, ROUTING, request=("r1", "pause"))
    assert paused.rollout.pause == PauseReason.REQUEST
    model = advance(model, paused, health, T0)
    assert model.status.pause_conditions == [
        PauseCondition(reason=PauseReason.REQUEST, start_time=T0)
    ]
    assert progressing(model)["reason"] == "PausedByRequest"  # the condition stays as it was

    later = T0 + timedelta(hours=2)
    held = plan_tracks(model, health, later, ROUTING)
    assert held.rollout.step == 0 and held.rollout.pause == PauseReason.REQUEST
    assert held.requeue_after is None
    still = advance(model, held, health, later)
    # Still the pass that paused it, not this one: an unchanged pause writes nothing.
    assert still.status.pause_conditions == model.status.pause_conditions

    resumed = plan_tracks(still, health, later, ROUTING, request=("r2", "resume"))
    assert not resumed.rollout.paused and resumed.rollout.step == 1
    assert advance(still, resumed, health, later).status.pause_conditions is None


def test_the_pause_condition_alone_holds_the_rollout() -> None:
    model, health = at_first_step()
    body = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"]["pauseConditions"] = [
        {"reason": "PausedByRequest", "startTime": "2026-01-01T00:00:00Z"}
    ]
    plan = plan_tracks(
        ModelDeployment.model_validate(body), health, T0 + timedelta(hours=2), ROUTING
    )
    assert plan.rollout.pause == PauseReason.REQUEST and plan.rollout.step == 0


def test_a_status_written_before_pause_conditions_still_holds_a_requested_pause() -> None:
    """An operator upgraded mid-pause finds only the Progressing condition's reason."""
    model, health = at_first_step()
    body = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    for cond in body["status"]["conditions"]:
        if cond["type"] == "Progressing":
            cond["reason"] = "PausedByRequest"
    assert "pauseConditions" not in body["status"]
    plan = plan_tracks(
        ModelDeployment.model_validate(body), health, T0 + timedelta(hours=2), ROUTING
    )
    assert plan.rollout.pause == PauseReason.REQUEST and plan.rollout.step == 0


def test_the_spec_pause_names_itself_in_the_pause_condition() -> None:
    model, health = at_first_step(rollout={**ROLLOUT, "paused": True})
    plan = plan_tracks(model, health, T0 + timedelta(hours=2), ROUTING)
    written = advance(model, plan, health, T0 + timedelta(hours=2))
    assert [p.reason for p in written.status.pause_conditions or []] == [PauseReason.SPEC]
    assert progressing(written)["reason"] == "Paused"


def test_each_state_is_named() -> None:
    assert stage_of(md("1")) == Stage.STEADY  # nothing stable yet
    assert stage_of(stable_at("1")) == Stage.STEADY
    immediate = bump(stable_at("1"), "2", rollout={"strategy": "Immediate"})
    assert stage_of(immediate) == Stage.SWITCHING_OVER

    model, health = at_first_step(**ANALYSIS)
    assert stage_of(model) is None  # a canary: its stage depends on the pass
    body = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["status"]["failedServingHash"] = model.spec.serving().fingerprint()
    assert stage_of(ModelDeployment.model_validate(body)) == Stage.ROLLED_BACK

    stable = model.status.stable_serving
    assert stable is not None
    at = T0 + timedelta(seconds=30)
    ctx = RolloutContext(model, health, at, ROUTING, stable, model.spec.serving(), replicas=2)
    state = plan_tracks(model, health, at, ROUTING).rollout  # at step 0 since T0
    assert canary_stage(ctx, state) == Stage.WAITING
    assert canary_stage(replace(ctx, now=T0 + timedelta(seconds=61)), state) == Stage.JUDGING
    assert canary_stage(ctx, replace(state, pause=PauseReason.SPEC)) == Stage.PAUSED
    assert canary_stage(ctx, replace(state, step=None)) == Stage.WARMING


def test_requests_promote_and_abort() -> None:
    model, health = at_first_step()
    promoted = plan_tracks(model, health, T0, ROUTING, request=("r1", "promote"))
    assert promoted.stable is not None and promoted.stable.model.version == "2"
    assert promoted.request_id == "r1"
    aborted = plan_tracks(model, health, T0, ROUTING, request=("r2", "abort"))
    assert aborted.failure is not None and aborted.failure.reason == "Aborted"


def test_immediate_switches_once_ready() -> None:
    model = bump(stable_at("1"), "2", rollout={"strategy": "Immediate"})
    waiting = plan_tracks(model, {"1": healthy("1")}, T0, ROUTING)
    assert waiting.traffic_versions == ["1"] and waiting.canary_track is not None
    done = plan_tracks(model, {"1": healthy("1"), "2": healthy("2")}, T0, ROUTING)
    assert done.stable is not None and done.stable.model.version == "2"
    assert [t.version for t in done.tracks] == ["2"]


def test_status_is_stable_for_an_unchanged_world() -> None:
    model, health = at_first_step()
    plan = plan_tracks(model, health, T0 + timedelta(seconds=10), ROUTING)
    previous = model.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    change = compute_status(model, plan, health, (T0 + timedelta(seconds=10)).timestamp(), previous)
    assert change.events == []
    written = {k: v for k, v in change.status.items() if v is not None}
    assert all(previous.get(k) == v for k, v in written.items()), (previous, written)


AUTOSCALED = {"minReplicas": 3, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70}


def test_an_autoscaled_version_is_created_at_its_minimum() -> None:
    model = md("1", autoscaling=AUTOSCALED)
    [track] = plan_tracks(model, {}, T0, ROUTING).tracks
    assert (track.replicas, track.initial_replicas) == (None, 3)


def test_an_existing_autoscaled_deployment_is_left_to_its_autoscaler() -> None:
    model = md("1", autoscaling=AUTOSCALED)
    [track] = plan_tracks(model, {"1": healthy("1", replicas=5)}, T0, ROUTING).tracks
    assert (track.replicas, track.initial_replicas) == (None, None)


def test_a_scale_to_zero_model_still_starts_with_one_pod() -> None:
    model = md("1", autoscaling={**AUTOSCALED, "minReplicas": 0, "targetRequestsPerSecond": 5})
    [track] = plan_tracks(model, {}, T0, ROUTING).tracks
    assert track.initial_replicas == 1


def test_ready_never_means_fewer_than_the_autoscaling_minimum() -> None:
    model = md("1", autoscaling=AUTOSCALED)
    health = {"1": healthy("1", replicas=1)}  # a Deployment the autoscaler has not grown yet
    change = compute_status(model, plan_tracks(model, health, T0, ROUTING), health, 0.0, {})
    ready = next(c for c in change.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BelowMinReplicas")
    assert change.status["phase"] != "Ready"

    health = {"1": healthy("1", replicas=3)}
    change = compute_status(model, plan_tracks(model, health, T0, ROUTING), health, 0.0, {})
    assert change.status["phase"] == "Ready"
