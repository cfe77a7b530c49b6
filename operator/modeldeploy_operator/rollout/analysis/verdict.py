"""The verdict: each configured check's value against its threshold, and the outcome.

A measured failure wins over a hold: the state machine must not wait on one check while another
already fails. Values are rounded to `VALUE_DECIMALS` before they are judged, so what status shows
is what was judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from modeldeploy_operator.api import (
    AnalysisCheckResult,
    AnalysisResult,
    AnalysisSpec,
    NoDataPolicy,
)
from modeldeploy_operator.rollout.analysis.checks import (
    COMPARE_CLIENT_ERRORS_WITH_STABLE,
    COMPARE_WITH_STABLE,
    DRIFT,
    LATENCY_P99_MS,
    SUCCESS_RATE,
)
from modeldeploy_operator.rollout.analysis.drift import MIN_DRIFT_SAMPLES

Outcome = Literal["pass", "fail", "hold"]

# Values are stored and judged at this precision, so what status shows is what was judged.
VALUE_DECIMALS: Final = 4
# How a check's message begins when its query returned nothing (status carries no other mark).
NO_DATA: Final = "no data"


@dataclass(frozen=True)
class _Rule:
    """How one configured check judges its value."""

    name: str
    threshold: float
    upper_bound: bool  # True: the value must not exceed the threshold; False: not fall below
    what: str  # the measured quantity, for messages
    unit: str
    no_data_hint: str


def _rules(spec: AnalysisSpec) -> list[_Rule]:
    rules: list[_Rule] = []
    if spec.success_rate is not None:
        rules.append(
            _Rule(
                SUCCESS_RATE,
                spec.success_rate.min,
                False,
                "success rate",
                "%",
                "the canary served no requests in the window",
            )
        )
    if spec.latency_p99_ms is not None:
        rules.append(
            _Rule(
                LATENCY_P99_MS,
                spec.latency_p99_ms.max,
                True,
                "p99 latency",
                " ms",
                "the canary served no requests in the window",
            )
        )
    if spec.compare_with_stable is not None:
        rules.append(
            _Rule(
                COMPARE_WITH_STABLE,
                spec.compare_with_stable.max_error_rate_increase,
                True,
                "5xx rate increase over stable",
                " percentage points",
                "the canary or the stable version served no requests in the window",
            )
        )
        rules.append(
            _Rule(
                COMPARE_CLIENT_ERRORS_WITH_STABLE,
                spec.compare_with_stable.client_error_bound,
                True,
                "4xx rate increase over stable",
                " percentage points",
                "the canary or the stable version served no requests in the window",
            )
        )
    if spec.drift is not None:
        rules.append(
            _Rule(
                DRIFT,
                spec.drift.max_psi,
                True,
                "prediction PSI against stable",
                "",
                f"the canary or the stable version made fewer than {MIN_DRIFT_SAMPLES} "
                "predictions in the window",
            )
        )
    return rules


def _fmt(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else ("+Inf" if value > 0 else "-Inf")


def _judge(
    rule: _Rule, raw: float | None, no_data: NoDataPolicy
) -> tuple[Outcome, AnalysisCheckResult]:
    """The check's own outcome and its result for status."""
    if raw is None or math.isnan(raw):
        verdict: dict[NoDataPolicy, Outcome] = {
            NoDataPolicy.FAIL: "fail",
            NoDataPolicy.PASS: "pass",
            NoDataPolicy.HOLD: "hold",
        }
        consequence = {
            NoDataPolicy.FAIL: "counts as a failed check",
            NoDataPolicy.PASS: "ignored",
            NoDataPolicy.HOLD: "waiting for data",
        }
        outcome = verdict[no_data]
        message = (
            f"{NO_DATA} ({rule.no_data_hint}); noData is {no_data.value}: {consequence[no_data]}"
        )
        return outcome, AnalysisCheckResult(
            name=rule.name,
            value=None,
            threshold=rule.threshold,
            passed=outcome == "pass",
            message=message,
        )
    value = round(raw, VALUE_DECIMALS) if math.isfinite(raw) else raw
    passed = value <= rule.threshold if rule.upper_bound else value >= rule.threshold
    if rule.upper_bound:
        relation = "is within the maximum" if passed else "is above the maximum"
    else:
        relation = "meets the minimum" if passed else "is below the minimum"
    message = f"{rule.what} {_fmt(value)}{rule.unit} {relation} {_fmt(rule.threshold)}{rule.unit}"
    return ("pass" if passed else "fail"), AnalysisCheckResult(
        name=rule.name,
        # Status is JSON: a non-finite value is reported in the message only.
        value=value if math.isfinite(value) else None,
        threshold=rule.threshold,
        passed=passed,
        message=message,
    )


def evaluate(
    spec: AnalysisSpec,
    values: Mapping[str, float | None],
    canary_version: str,
    step: int,
    now: datetime,
) -> tuple[Outcome, AnalysisResult]:
    """Judge measured values (keyed by check name; None or NaN = no data) against `spec`.

    Outcome: "fail" when any check fails (a measured violation, or no data under noData Fail);
    else "hold" when any check has no data under noData Hold; else "pass". A measured failure
    wins over a hold: the state machine must not wait on one check while another already fails.
    """
    policy = NoDataPolicy(spec.no_data)  # also when a spec was copied without validation
    verdicts: list[tuple[Outcome, AnalysisCheckResult]] = [
        _judge(rule, values.get(rule.name), policy) for rule in _rules(spec)
    ]
    failed = [check for verdict, check in verdicts if verdict == "fail"]
    held = [check for verdict, check in verdicts if verdict == "hold"]
    outcome: Outcome = "fail" if failed else "hold" if held else "pass"
    if failed:
        message = f"{len(failed)} of {len(verdicts)} checks failed: " + "; ".join(
            f"{check.name}: {check.message}" for check in failed
        )
    elif held:
        message = "holding: no data for " + ", ".join(check.name for check in held)
    else:
        message = f"all {len(verdicts)} checks passed"
    checks = [check for _, check in verdicts]
    by_name = {check.name: check.value for check in checks}
    return outcome, AnalysisResult(
        time=now,
        canary_version=canary_version,
        step=step,
        passed=outcome == "pass",
        success_rate=by_name.get(SUCCESS_RATE),
        latency_p99_ms=by_name.get(LATENCY_P99_MS),
        error_rate_increase=by_name.get(COMPARE_WITH_STABLE),
        client_error_rate_increase=by_name.get(COMPARE_CLIENT_ERRORS_WITH_STABLE),
        drift_psi=by_name.get(DRIFT),
        checks=checks,
        message=message,
    )


def failed_for_want_of_data(result: AnalysisResult) -> bool:
    """Whether every check that failed did so only because its query returned nothing."""
    failed = [check for check in result.checks if not check.passed]
    return bool(failed) and all(
        check.value is None and (check.message or "").startswith(NO_DATA) for check in failed
    )
