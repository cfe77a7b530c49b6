"""The evaluation gate: table-driven verdicts, written out by hand (never computed by the gate)."""

from __future__ import annotations

import pytest
from modeldeploy_operator.api.retraining import EvaluationGate
from modeldeploy_operator.retraining.gate import EvaluationUnreadable, judge, parse_evaluation

from tests.unit.operator.retraining.retraining_models import evaluation_json


def gate(*metrics: dict[str, object]) -> EvaluationGate:
    return EvaluationGate.model_validate(
        {"holdoutUri": "http://files.example/holdout.csv", "metrics": list(metrics)}
    )


ACCURACY = {"name": "accuracy", "threshold": 0.8, "minImprovement": 0.01}
LOG_LOSS = {"name": "logLoss", "threshold": 0.5}


@pytest.mark.parametrize(
    ("case", "metrics", "candidate", "champion", "passed", "reason_part"),
    [
        ("better on both", [ACCURACY, LOG_LOSS],
         {"accuracy": 0.95, "logLoss": 0.20}, {"accuracy": 0.90, "logLoss": 0.30},
         [True, True], ""),
        ("accuracy below the threshold", [ACCURACY],
         {"accuracy": 0.79}, {"accuracy": 0.70}, [False], "not at least the threshold 0.8"),
        ("improvement too small", [ACCURACY],
         {"accuracy": 0.905}, {"accuracy": 0.90}, [False], "less than the required 0.01"),
        ("worse candidate (shuffled labels)", [ACCURACY],
         {"accuracy": 0.33}, {"accuracy": 0.95}, [False], "not at least the threshold"),
        # logLoss: smaller is better, so its threshold is a ceiling and a rise is a regression.
        ("log loss above its ceiling", [LOG_LOSS],
         {"logLoss": 0.6}, {"logLoss": 0.7}, [False], "not at most the threshold 0.5"),
        ("log loss rose", [LOG_LOSS],
         {"logLoss": 0.4}, {"logLoss": 0.3}, [False], "improves on the champion's 0.3 by -0.1"),
        ("log loss fell", [LOG_LOSS], {"logLoss": 0.2}, {"logLoss": 0.3}, [True], ""),
        ("missing candidate metric fails closed", [ACCURACY, LOG_LOSS],
         {"accuracy": 0.95}, {"accuracy": 0.90, "logLoss": 0.3}, [True, False],
         "reported no logLoss for the candidate"),
        ("missing champion metric fails closed", [ACCURACY],
         {"accuracy": 0.95}, {}, [False], "reported no accuracy for the champion"),
        ("no threshold, equal is enough at minImprovement 0", [{"name": "r2"}],
         {"r2": 0.5}, {"r2": 0.5}, [True], ""),
    ],
)  # fmt: skip
def test_metric_verdicts(
    case: str,
    metrics: list[dict[str, object]],
    candidate: dict[str, float],
    champion: dict[str, float],
    passed: list[bool],
    reason_part: str,
) -> None:
    verdict = judge(gate(*metrics), parse_evaluation(evaluation_json(candidate, champion)))
    assert [row.passed for row in verdict.rows] == passed, case
    assert verdict.passed == all(passed)
    if reason_part:
        assert reason_part in verdict.decision
        assert verdict.decision.startswith("version 2 rejected against champion 1")


def test_an_unscorable_champion_fails_every_metric() -> None:
    evaluation = parse_evaluation(
        evaluation_json({"accuracy": 0.99}, None, champion_error="cannot load model.pkl")
    )
    verdict = judge(gate(ACCURACY), evaluation)
    assert not verdict.passed
    assert verdict.rows[0].reason == "the champion could not be scored: cannot load model.pkl"
    assert verdict.rows[0].candidate == 0.99 and verdict.rows[0].champion is None


def test_an_unscorable_candidate_fails() -> None:
    evaluation = parse_evaluation(
        evaluation_json(None, {"accuracy": 0.9}, candidate_error="registry said 404")
    )
    assert not judge(gate(ACCURACY), evaluation).passed


def test_the_table_carries_direction_and_bars() -> None:
    verdict = judge(
        gate(ACCURACY, LOG_LOSS),
        parse_evaluation(
            evaluation_json({"accuracy": 0.95, "logLoss": 0.2}, {"accuracy": 0.9, "logLoss": 0.3})
        ),
    )
    accuracy, log_loss = verdict.rows
    assert (accuracy.greater_is_better, accuracy.threshold, accuracy.min_improvement) == (
        True, 0.8, 0.01,
    )  # fmt: skip
    assert (log_loss.greater_is_better, log_loss.threshold) == (False, 0.5)
    assert (accuracy.candidate, accuracy.champion) == (0.95, 0.9)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Traceback (most recent call last): ...",
        "[]",
        '{"rows": 3, "candidate": {"version": "2"}, "champion": {"version": "1"}}',
        '{"holdoutSha256": "x", "rows": 3, "candidate": {}, "champion": {"version": "1"}}',
    ],
)
def test_an_unreadable_evaluation_is_refused(text: str) -> None:
    with pytest.raises(EvaluationUnreadable):
        parse_evaluation(text)


def test_a_gate_names_each_metric_once() -> None:
    with pytest.raises(ValueError, match="names each metric at most once"):
        gate(ACCURACY, {"name": "accuracy"})
