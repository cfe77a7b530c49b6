"""The analysis verdict: each check's value against its threshold, and the outcome."""

from __future__ import annotations

import math

import pytest
from modeldeploy_operator.rollout.analysis.verdict import evaluate

from tests.unit.operator.rollout.analysis.analysis_specs import FULL, NOW, spec

# ---------------------------------------------------------------------------------------------
# The verdict.


def test_healthy_values_pass_every_check() -> None:
    values = {
        "successRate": 99.7,
        "latencyP99Ms": 41.0,
        "compareWithStable": 0.1,
        "compareClientErrorsWithStable": -0.2,
        "drift": 0.05,
    }
    outcome, result = evaluate(FULL, values, "2", 1, NOW)
    assert outcome == "pass"
    assert result.passed and result.time == NOW and result.canary_version == "2"
    assert result.step == 1
    assert (result.success_rate, result.latency_p99_ms) == (99.7, 41.0)
    assert (result.error_rate_increase, result.drift_psi) == (0.1, 0.05)
    assert result.client_error_rate_increase == -0.2
    assert [c.name for c in result.checks] == [
        "successRate",
        "latencyP99Ms",
        "compareWithStable",
        "compareClientErrorsWithStable",
        "drift",
    ]
    assert all(c.passed for c in result.checks)
    # The 4xx bound defaults to maxErrorRateIncrease.
    assert [c.threshold for c in result.checks] == [99, 250, 1, 1, 0.2]
    assert result.message == "all 5 checks passed"
    assert result.checks[0].message == "success rate 99.7% meets the minimum 99%"


def test_each_violated_check_fails_with_its_value_and_threshold() -> None:
    values = {
        "successRate": 87.5,
        "latencyP99Ms": 480.0,
        "compareWithStable": 12.5,
        "compareClientErrorsWithStable": 100.0,
        "drift": 0.5,
    }
    outcome, result = evaluate(FULL, values, "2", 0, NOW)
    assert outcome == "fail" and not result.passed
    assert [c.passed for c in result.checks] == [False] * 5
    messages = {c.name: c.message for c in result.checks}
    assert messages["successRate"] == "success rate 87.5% is below the minimum 99%"
    assert messages["latencyP99Ms"] == "p99 latency 480 ms is above the maximum 250 ms"
    assert messages["compareWithStable"] == (
        "5xx rate increase over stable 12.5 percentage points is above the maximum 1 "
        "percentage points"
    )
    assert messages["compareClientErrorsWithStable"] == (
        "4xx rate increase over stable 100 percentage points is above the maximum 1 "
        "percentage points"
    )
    assert messages["drift"] == "prediction PSI against stable 0.5 is above the maximum 0.2"
    assert result.message is not None
    assert result.message.startswith("5 of 5 checks failed: successRate: success rate 87.5%")


def test_the_4xx_comparison_has_its_own_bound_when_set() -> None:
    s = spec(compareWithStable={"maxErrorRateIncrease": 1, "maxClientErrorRateIncrease": 5})
    values = {"compareWithStable": 0.0, "compareClientErrorsWithStable": 4.0}
    outcome, result = evaluate(s, values, "2", 0, NOW)
    assert outcome == "pass"
    assert [(c.name, c.threshold) for c in result.checks] == [
        ("compareWithStable", 1),
        ("compareClientErrorsWithStable", 5),
    ]
    outcome, _ = evaluate(s, {**values, "compareClientErrorsWithStable": 5.5}, "2", 0, NOW)
    assert outcome == "fail"


def test_a_value_at_the_threshold_passes() -> None:
    outcome, _ = evaluate(
        spec(successRate={"min": 99}, latencyP99Ms={"max": 250}),
        {"successRate": 99.0, "latencyP99Ms": 250.0},
        "2",
        0,
        NOW,
    )
    assert outcome == "pass"


def test_values_are_judged_as_reported() -> None:
    # 98.99996 is stored as 99.0: status must not show a passing number with a failed verdict.
    outcome, result = evaluate(
        spec(successRate={"min": 99}), {"successRate": 98.99996}, "2", 0, NOW
    )
    assert (outcome, result.success_rate) == ("pass", 99.0)
    outcome, result = evaluate(spec(successRate={"min": 99}), {"successRate": 98.9996}, "2", 0, NOW)
    assert (outcome, result.success_rate) == ("fail", 98.9996)


def test_one_failure_among_passes_fails_the_run() -> None:
    values = {"successRate": 100.0, "latencyP99Ms": 251.0}
    outcome, result = evaluate(
        spec(successRate={"min": 99}, latencyP99Ms={"max": 250}), values, "2", 0, NOW
    )
    assert outcome == "fail"
    assert [c.passed for c in result.checks] == [True, False]
    assert result.message == (
        "1 of 2 checks failed: latencyP99Ms: p99 latency 251 ms is above the maximum 250 ms"
    )


@pytest.mark.parametrize(
    ("policy", "outcome", "passed", "consequence"),
    [
        ("Fail", "fail", False, "counts as a failed check"),
        ("Pass", "pass", True, "ignored"),
        ("Hold", "hold", False, "waiting for data"),
    ],
)
def test_no_data_follows_the_policy(
    policy: str, outcome: str, passed: bool, consequence: str
) -> None:
    s = spec(successRate={"min": 99}, noData=policy)
    got, result = evaluate(s, {"successRate": None}, "2", 0, NOW)
    assert got == outcome and result.passed is passed
    (check,) = result.checks
    assert check.value is None and check.threshold == 99 and check.passed is passed
    assert check.message == (
        f"no data (the canary served no requests in the window); noData is {policy}: {consequence}"
    )


def test_nan_and_a_missing_value_are_no_data() -> None:
    s = spec(successRate={"min": 99}, latencyP99Ms={"max": 1}, noData="Hold")
    outcome, result = evaluate(s, {"successRate": math.nan}, "2", 0, NOW)
    assert outcome == "hold"
    assert result.message == "holding: no data for successRate, latencyP99Ms"


def test_a_measured_failure_wins_over_a_hold() -> None:
    s = spec(successRate={"min": 99}, latencyP99Ms={"max": 100}, noData="Hold")
    outcome, result = evaluate(s, {"successRate": 50.0, "latencyP99Ms": None}, "2", 0, NOW)
    assert outcome == "fail"
    assert [c.passed for c in result.checks] == [False, False]


def test_an_infinite_latency_fails_and_stays_out_of_the_json_status() -> None:
    outcome, result = evaluate(
        spec(latencyP99Ms={"max": 100}), {"latencyP99Ms": math.inf}, "2", 0, NOW
    )
    assert outcome == "fail"
    assert result.latency_p99_ms is None and result.checks[0].value is None
    assert result.checks[0].message == "p99 latency +Inf ms is above the maximum 100 ms"
    result.model_dump_json()  # serialisable
