"""The evaluation gate: the candidate's and the champion's scores on one holdout → a verdict.

Pure. The scores come from the evaluator Job the operator runs (`modeldeploy evaluate`), never
from the trainer. It fails closed: a metric the evaluator did not report for the candidate, or a
champion it could not score, fails that metric (the alias must never move on missing evidence).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modeldeploy_operator.api.retraining import EvaluationGate, GateMetric, MetricResult


class EvaluationUnreadable(ValueError):
    """The evaluator's output is not the JSON document it writes."""


@dataclass(frozen=True)
class ModelScores:
    """One model's scores on the holdout, or why it could not be scored."""

    version: str
    metrics: Mapping[str, float]
    error: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """What the evaluator reported (`modeldeploy evaluate`'s JSON result)."""

    holdout_sha256: str
    rows: int
    candidate: ModelScores
    champion: ModelScores


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    rows: list[MetricResult]
    decision: str


def _scores(document: Any, role: str) -> ModelScores:
    if not isinstance(document, dict) or not isinstance(document.get("version"), str):
        raise EvaluationUnreadable(f"the evaluation has no {role} version")
    metrics = document.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise EvaluationUnreadable(f"the {role}'s metrics are not a mapping")
    numbers = {
        str(name): float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    error = document.get("error")
    return ModelScores(document["version"], numbers, str(error) if error else None)


def parse_evaluation(text: str) -> Evaluation:
    """The evaluator's JSON result (see `modeldeploy_serving.evaluate`)."""
    try:
        document = json.loads(text)
    except ValueError as err:
        raise EvaluationUnreadable(f"the evaluation is not JSON: {text[:200]!r}") from err
    if not isinstance(document, dict):
        raise EvaluationUnreadable("the evaluation is not a JSON object")
    digest, rows = document.get("holdoutSha256"), document.get("rows")
    if not isinstance(digest, str) or not isinstance(rows, int):
        raise EvaluationUnreadable("the evaluation names no holdout digest and row count")
    return Evaluation(
        digest, rows, _scores(document.get("candidate"), "candidate"),
        _scores(document.get("champion"), "champion"),
    )  # fmt: skip


def _judge_metric(gate_metric: GateMetric, evaluation: Evaluation) -> MetricResult:
    name = gate_metric.name
    better = name.greater_is_better
    candidate = _finite(evaluation.candidate.metrics.get(name.value))
    champion = _finite(evaluation.champion.metrics.get(name.value))
    row = MetricResult(
        name=name.value, greater_is_better=better, candidate=candidate, champion=champion,
        threshold=gate_metric.threshold, min_improvement=gate_metric.min_improvement,
        passed=False, reason="",
    )  # fmt: skip

    def failed(reason: str) -> MetricResult:
        return row.model_copy(update={"reason": reason})

    if evaluation.candidate.error is not None:
        return failed(f"the candidate could not be scored: {evaluation.candidate.error}")
    if candidate is None:
        return failed(f"the evaluator reported no {name.value} for the candidate")
    if evaluation.champion.error is not None:
        return failed(f"the champion could not be scored: {evaluation.champion.error}")
    if champion is None:
        return failed(f"the evaluator reported no {name.value} for the champion")
    # Differences in the metric's better direction: positive is better.
    sign = 1.0 if better else -1.0
    if gate_metric.threshold is not None and sign * (candidate - gate_metric.threshold) < 0:
        bound = "at least" if better else "at most"
        return failed(f"{candidate:.6g} is not {bound} the threshold {gate_metric.threshold:g}")
    improvement = sign * (candidate - champion)
    if improvement < gate_metric.min_improvement:
        return failed(
            f"improves on the champion's {champion:.6g} by {improvement:.6g}, less than the "
            f"required {gate_metric.min_improvement:g}"
        )
    reason = (
        f"{candidate:.6g} against the champion's {champion:.6g} (improvement {improvement:.6g})"
    )
    return row.model_copy(update={"passed": True, "reason": reason})


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def judge(gate: EvaluationGate, evaluation: Evaluation) -> GateVerdict:
    """Every gate metric must pass; the decision names the first that did not."""
    rows = [_judge_metric(metric, evaluation) for metric in gate.metrics]
    failures = [row for row in rows if not row.passed]
    candidate, champion = evaluation.candidate.version, evaluation.champion.version
    if failures:
        decision = f"version {candidate} rejected against champion {champion}: " + "; ".join(
            f"{row.name}: {row.reason}" for row in failures
        )
        return GateVerdict(False, rows, decision)
    return GateVerdict(
        True, rows, f"version {candidate} passed every metric against champion {champion}"
    )
