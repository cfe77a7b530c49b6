"""One analysis: every configured check queried concurrently, then judged."""

from __future__ import annotations

import asyncio
from datetime import datetime

import aiohttp

from modeldeploy_operator.api import AnalysisResult, AnalysisSpec
from modeldeploy_operator.rollout.analysis.checks import DRIFT
from modeldeploy_operator.rollout.analysis.drift import prediction_psi
from modeldeploy_operator.rollout.analysis.prometheus import Sample, one_number, query_vector
from modeldeploy_operator.rollout.analysis.queries import (
    DEFAULT_WINDOW,
    DRIFT_CANARY,
    DRIFT_STABLE,
    build_queries,
)
from modeldeploy_operator.rollout.analysis.verdict import Outcome, evaluate


async def run_analysis(
    session: aiohttp.ClientSession,
    base_url: str,
    spec: AnalysisSpec,
    namespace: str,
    model: str,
    canary_version: str,
    stable_version: str,
    step: int,
    now: datetime,
    *,
    default_window: str = DEFAULT_WINDOW,
) -> tuple[Outcome, AnalysisResult]:
    """Query every check of `spec` concurrently and judge the values.

    The window is `spec.interval`, else `default_window` (pass the rollout's stepInterval).
    Raises AnalysisError when any query fails: no verdict is better than one on partial data.
    """
    queries = build_queries(
        spec, namespace, model, canary_version, stable_version, spec.interval or default_window
    )
    keys = list(queries)
    answers = await asyncio.gather(
        *(query_vector(session, base_url, queries[key]) for key in keys), return_exceptions=True
    )
    results: dict[str, list[Sample]] = {}
    for key, answer in zip(keys, answers, strict=True):
        if isinstance(answer, BaseException):
            raise answer
        results[key] = answer
    values: dict[str, float | None] = {
        key: one_number(samples, base_url, queries[key])
        for key, samples in results.items()
        if key not in (DRIFT_CANARY, DRIFT_STABLE)
    }
    if spec.drift is not None:
        values[DRIFT] = prediction_psi(results[DRIFT_CANARY], results[DRIFT_STABLE])
    return evaluate(spec, values, canary_version, step, now)
