"""The analysis specs and the clock the analysis tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modeldeploy_operator.api import AnalysisSpec

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)


def spec(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(fields)


FULL = spec(
    successRate={"min": 99},
    latencyP99Ms={"max": 250},
    compareWithStable={"maxErrorRateIncrease": 1},
    drift={"maxPsi": 0.2},
)
