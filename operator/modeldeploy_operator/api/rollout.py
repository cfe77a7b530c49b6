"""spec.rollout: how a new version replaces the stable one — steps, timing and the analysis
that judges the canary before each step."""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, field_validator, model_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import MAX_STEPS, MAX_URI_LENGTH
from modeldeploy_operator.api.patterns import HTTP_URL_PATTERN
from modeldeploy_operator.api.rules import Rule, cel_rules
from modeldeploy_operator.api.units import check_duration_range, duration_field


class RolloutStrategy(StrEnum):
    CANARY = "Canary"
    IMMEDIATE = "Immediate"


class NoDataPolicy(StrEnum):
    FAIL = "Fail"
    PASS = "Pass"
    HOLD = "Hold"


class ClientErrorPolicy(StrEnum):
    """Whether the success rate counts the canary's 4xx answers as failures."""

    COUNT = "Count"
    IGNORE = "Ignore"


DEFAULT_STEPS: Final = (10, 25, 50)
STEPS_RULE: Final = Rule(
    "self.isSorted() && self.all(s, self.exists_one(t, t == s))",
    "spec.rollout.steps must be strictly increasing",
)


class SuccessRateCheck(SpecModel):
    """Canary success rate: percent of its responses that are neither 5xx nor (unless ignored)
    4xx. A version that refuses the requests stable serves (a model retrained on other
    features answers 400) fails the canary like one that crashes."""

    min: float = Field(
        description="Lowest acceptable success rate, in percent (e.g. 99).", ge=0, le=100
    )
    client_errors: ClientErrorPolicy = Field(
        default=ClientErrorPolicy.COUNT,
        description="Count: 4xx answers are failures. Ignore: only 5xx are, for clients that "
        "often send invalid requests; compareWithStable still judges the canary's 4xx against "
        "stable's.",
    )


class LatencyCheck(SpecModel):
    """Canary 99th-percentile latency."""

    max: float = Field(description="Highest acceptable p99 latency in milliseconds.", gt=0)


class StableComparisonCheck(SpecModel):
    """The canary compared with the stable version over the same window: its 5xx rate, and its
    4xx rate (client errors stable does not produce on the same traffic are the canary's)."""

    max_error_rate_increase: float = Field(
        description="How many percentage points the canary's 5xx rate may exceed stable's.",
        ge=0,
        le=100,
    )
    max_client_error_rate_increase: float | None = Field(
        default=None,
        description="How many percentage points the canary's 4xx rate may exceed stable's; "
        "default: maxErrorRateIncrease.",
        ge=0,
        le=100,
    )

    @property
    def client_error_bound(self) -> float:
        if self.max_client_error_rate_increase is None:
            return self.max_error_rate_increase
        return self.max_client_error_rate_increase


class DriftCheck(SpecModel):
    """Drift of the canary's prediction distribution against stable's, as PSI."""

    max_psi: float = Field(
        description="Highest acceptable population stability index (0.1 small, 0.25 large).",
        gt=0,
        le=10,
    )


ANALYSIS_CHECK_RULE: Final = Rule(
    "has(self.successRate) || has(self.latencyP99Ms) || has(self.compareWithStable)"
    " || has(self.drift)",
    "spec.rollout.analysis needs at least one check: successRate, latencyP99Ms, "
    "compareWithStable or drift",
)


class AnalysisSpec(SpecModel):
    """Checks run on Prometheus before every step; a failing check counts towards rollback."""

    model_config = ConfigDict(json_schema_extra=cel_rules(ANALYSIS_CHECK_RULE))

    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus to query (http(s)://HOST[:PORT]); default from the operator's "
        "configuration.",
        pattern=HTTP_URL_PATTERN,
        max_length=MAX_URI_LENGTH,
    )
    interval: str | None = duration_field(
        None,
        description="Window each query looks back over (e.g. 1m); default: spec.rollout."
        "stepInterval.",
        path="spec.rollout.analysis.interval",
    )
    success_rate: SuccessRateCheck | None = Field(
        default=None,
        description="Fail when the canary's percentage of answers that are neither 5xx nor "
        "(unless clientErrors is Ignore) 4xx is below min.",
    )
    latency_p99_ms: LatencyCheck | None = Field(
        default=None, description="Fail when the canary's p99 latency is above max milliseconds."
    )
    compare_with_stable: StableComparisonCheck | None = Field(
        default=None,
        description="Fail when the canary's 5xx or 4xx rate is worse than stable's by a margin.",
    )
    drift: DriftCheck | None = Field(
        default=None,
        description="Fail when the canary's predictions drift from stable's by more than maxPsi.",
    )
    max_failed_checks: int = Field(
        default=2,
        description="Failed checks (counted over the whole rollout) that trigger rollback.",
        ge=1,
        le=100,
    )
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.FAIL,
        description="What an empty query result means: Fail counts a failed check, Pass lets the "
        "step advance, Hold waits without counting (until progressDeadline).",
    )

    @model_validator(mode="after")
    def _rules(self) -> AnalysisSpec:
        check_duration_range(self.interval, "spec.rollout.analysis.interval")
        ANALYSIS_CHECK_RULE.require(
            any(
                check is not None
                for check in (
                    self.success_rate,
                    self.latency_p99_ms,
                    self.compare_with_stable,
                    self.drift,
                )
            )
        )
        return self


class RolloutSpec(SpecModel):
    """How a new version replaces the stable one."""

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.CANARY,
        description="Canary moves traffic through steps with analysis before each; Immediate "
        "switches all traffic once the new version is ready.",
    )
    steps: list[Annotated[int, Field(ge=1, le=99)]] = Field(
        default_factory=lambda: list(DEFAULT_STEPS),
        description="Canary traffic percent per step, strictly increasing within 1..99; after "
        "the last step the canary is promoted to 100%.",
        min_length=1,
        max_length=MAX_STEPS,
        json_schema_extra={"default": list(DEFAULT_STEPS), **cel_rules(STEPS_RULE)},
    )
    step_interval: str = duration_field(
        "60s",
        description="Time spent at each step before analysis and the next step (e.g. 30s, 5m).",
        path="spec.rollout.stepInterval",
    )
    progress_deadline: str = duration_field(
        "10m",
        description="How long a version may take to become ready (or analysis may hold) before "
        "the rollout fails and rolls back; also the Deployments' progress deadline.",
        path="spec.rollout.progressDeadline",
    )
    scale_down_delay: str = duration_field(
        "30s",
        description="How long a version that no longer receives traffic (the old stable after "
        "promotion, a rolled-back canary) keeps running before its Deployment is deleted, so "
        "that routers and endpoints have moved every request off it (0s: at once).",
        path="spec.rollout.scaleDownDelay",
        minimum="0s",
    )
    paused: bool = Field(
        default=False, description="Hold the rollout at its current step (GitOps-friendly pause)."
    )
    analysis: AnalysisSpec | None = Field(
        default=None,
        description="Metric checks before each step; absent → steps advance on time and "
        "readiness alone.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        STEPS_RULE.require(all(a < b for a, b in itertools.pairwise(steps)))
        return steps

    @model_validator(mode="after")
    def _rules(self) -> RolloutSpec:
        check_duration_range(self.step_interval, "spec.rollout.stepInterval")
        check_duration_range(self.progress_deadline, "spec.rollout.progressDeadline")
        check_duration_range(self.scale_down_delay, "spec.rollout.scaleDownDelay", "0s")
        return self
