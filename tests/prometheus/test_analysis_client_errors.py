"""A canary that refuses what stable accepts, judged by a real Prometheus scraping real servers.

Version 2 was retrained with a fifth feature; today's clients still send iris's four, so the
server answers every one of its predictions 400 (the model server's answer to a feature-count
mismatch) while version 1 answers 200. No 5xx anywhere: a canary judged on 5xx alone looks
perfect. Both versions run as real `modeldeploy serve` processes under the same traffic; the
Debian `prometheus` scrapes them every second (tests/support/serving_stack.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from modeldeploy_operator.api import AnalysisResult, AnalysisSpec
from modeldeploy_operator.rollout.analysis.prometheus import query_prometheus
from modeldeploy_operator.rollout.analysis.run import run_analysis
from modeldeploy_operator.rollout.analysis.verdict import Outcome

from tests.support.kube import eventually
from tests.support.serving_stack import Served, ServingStack

NAMESPACE = "ml"
MODEL = "iris"
WINDOW = "5s"
NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]


def _run(coroutine: Any) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            return await coroutine(session)

    return asyncio.run(main())


def analyse(prometheus: str, spec: AnalysisSpec) -> tuple[Outcome, AnalysisResult]:
    result: tuple[Outcome, AnalysisResult] = _run(
        lambda session: run_analysis(
            session, prometheus, spec, NAMESPACE, MODEL, "2", "1", step=0, now=NOW
        )
    )
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingStack]:
    """Both versions under traffic, once the window holds nothing but that traffic."""
    serving = ServingStack(NAMESPACE, MODEL, Path(tmp_path_factory.mktemp("stack")))
    try:
        serving.start({"1": Served.HEALTHY, "2": Served.FIVE_FEATURES})
        with serving.traffic() as codes:

            def scrapes_in_window(version: str, code: str) -> float:
                selector = f'{{namespace="{NAMESPACE}",model="{MODEL}",version="{version}"'
                promql = (
                    f'count_over_time(modeldeploy_requests_total{selector},code="{code}"}}'
                    f"[{WINDOW}])"
                )
                value = _run(lambda session: query_prometheus(session, serving.prometheus, promql))
                return value or 0.0

            # A series is born with its first response; once every scrape in the window saw it,
            # the window holds only this traffic (nothing from the servers' start-up).
            eventually(
                lambda: min(scrapes_in_window("1", "200"), scrapes_in_window("2", "400")) >= 5,
                timeout=60,
                interval=0.5,
                what="a whole window of traffic in Prometheus",
            )
            assert set(codes["2"]) == {400} and set(codes["1"]) == {200}, codes
            yield serving
    finally:
        serving.stop()


def checks(result: AnalysisResult) -> dict[str, Any]:
    return {check.name: check for check in result.checks}


def test_a_canary_answering_400_to_what_stable_serves_fails_success_rate(
    stack: ServingStack,
) -> None:
    spec = AnalysisSpec.model_validate({"interval": WINDOW, "successRate": {"min": 99}})
    outcome, result = analyse(stack.prometheus, spec)
    assert outcome == "fail", result.message
    assert result.success_rate == 0  # every answer of the canary was a 400
    assert checks(result)["successRate"].passed is False


def test_compared_with_stable_its_client_errors_are_the_canary_s_own(stack: ServingStack) -> None:
    spec = AnalysisSpec.model_validate(
        {"interval": WINDOW, "compareWithStable": {"maxErrorRateIncrease": 1}}
    )
    outcome, result = analyse(stack.prometheus, spec)
    assert outcome == "fail", result.message
    measured = checks(result)
    assert measured["compareWithStable"].value == 0  # no 5xx on either side
    assert measured["compareWithStable"].passed is True
    # 100% of the canary's answers are 4xx, 0% of stable's; the bound defaults to
    # maxErrorRateIncrease.
    client = measured["compareClientErrorsWithStable"]
    assert (client.value, client.threshold, client.passed) == (100, 1, False)
    assert result.client_error_rate_increase == 100
    assert result.message is not None and "compareClientErrorsWithStable" in result.message


def test_with_client_errors_ignored_only_the_comparison_with_stable_catches_it(
    stack: ServingStack,
) -> None:
    spec = AnalysisSpec.model_validate(
        {
            "interval": WINDOW,
            "successRate": {"min": 99, "clientErrors": "Ignore"},
            "compareWithStable": {"maxErrorRateIncrease": 1, "maxClientErrorRateIncrease": 5},
        }
    )
    outcome, result = analyse(stack.prometheus, spec)
    assert outcome == "fail", result.message
    measured = checks(result)
    assert (measured["successRate"].value, measured["successRate"].passed) == (100, True)
    client = measured["compareClientErrorsWithStable"]
    assert (client.value, client.threshold, client.passed) == (100, 5, False)
