"""Canary analysis against a real Prometheus.

A real `prometheus` (Debian package) on a loopback port scrapes, every second, the exporter in
`analysis_exporter` — model-server metrics as exact functions of time — three ways: as the
Prometheus Operator would for namespace `ml` (a `namespace` target label), as it would for a
same-named model in namespace `other`, and as a plain scrape with no namespace label. Then
`run_analysis` — the generated PromQL over HTTP, PSI in Python, the verdict — must pass the
healthy canary, fail the bad one with the values the exporter was built to produce, ignore the
other namespace's model, find unlabelled series, and apply noData to a version nobody serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from modeldeploy_operator.api import AnalysisResult, AnalysisSpec, NoDataPolicy
from modeldeploy_operator.rollout.analysis.drift import population_stability_index
from modeldeploy_operator.rollout.analysis.prometheus import AnalysisError, query_prometheus
from modeldeploy_operator.rollout.analysis.run import run_analysis
from modeldeploy_operator.rollout.analysis.verdict import Outcome

from tests.prometheus.analysis_exporter import HEALTHY_CLASSES, SHIFTED_CLASSES
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
WINDOW = "5s"

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        PROMETHEUS is None, reason="needs the prometheus binary (Debian: prometheus)"
    ),
]

SPEC = AnalysisSpec.model_validate(
    {
        "interval": WINDOW,
        "successRate": {"min": 99},
        "latencyP99Ms": {"max": 250},
        "compareWithStable": {"maxErrorRateIncrease": 1},
        "drift": {"maxPsi": 0.1},
    }
)


def _query(url: str, promql: str) -> float | None:
    async def main() -> float | None:
        async with aiohttp.ClientSession() as session:
            return await query_prometheus(session, url, promql)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus's base URL, once every target has been scraped over a whole window."""
    assert PROMETHEUS is not None
    work = tmp_path_factory.mktemp("prometheus")
    exporter = subprocess.Popen(
        [sys.executable, "-m", "tests.prometheus.analysis_exporter"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    server: subprocess.Popen[bytes] | None = None
    try:
        assert exporter.stdout is not None
        ports = json.loads(exporter.stdout.readline())
        target = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {  # what a Prometheus Operator PodMonitor adds: namespace and pod
                    "job_name": "ml",
                    "static_configs": [
                        {"targets": [target["ml"]], "labels": {"namespace": "ml", "pod": "iris-0"}}
                    ],
                },
                {
                    "job_name": "other",
                    "static_configs": [
                        {"targets": [target["other"]], "labels": {"namespace": "other"}}
                    ],
                },
                {"job_name": "plain", "static_configs": [{"targets": [target["plain"]]}]},
            ],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = (work / "prometheus.log").open("wb")
        server = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        # Ready when every target has at least four scrapes inside the analysis window.
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(AnalysisError):
                scrapes = _query(url, f"min(count_over_time(up[{WINDOW}])) and count(up) == 3")
                if scrapes is not None and scrapes >= 4:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "Prometheus did not scrape the exporter in time:\n"
                    + (work / "prometheus.log").read_text()[-3000:]
                )
            time.sleep(0.25)
        yield url
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if exporter.stdin is not None:
            exporter.stdin.close()
        exporter.terminate()
        exporter.wait(timeout=10)


def analyse(
    url: str,
    canary: str,
    stable: str = "1",
    namespace: str = "ml",
    model: str = "iris",
    spec: AnalysisSpec = SPEC,
) -> tuple[Outcome, AnalysisResult]:
    async def main() -> tuple[Outcome, AnalysisResult]:
        async with aiohttp.ClientSession() as session:
            return await run_analysis(
                session, url, spec, namespace, model, canary, stable, step=0, now=NOW
            )

    return asyncio.run(main())


def values(result: AnalysisResult) -> dict[str, Any]:
    return {check.name: check.value for check in result.checks}


def test_a_healthy_canary_passes_every_check(prometheus: str) -> None:
    outcome, result = analyse(prometheus, canary="2")
    assert outcome == "pass", result.message
    measured = values(result)
    assert measured["successRate"] == 100
    # Every request takes 20 ms: bucket (10 ms, 25 ms], p99 interpolated at 99% of it.
    assert measured["latencyP99Ms"] == pytest.approx(10 + 15 * 0.99, abs=0.01)
    assert measured["compareWithStable"] == pytest.approx(0, abs=1e-6)
    assert measured["drift"] == pytest.approx(0, abs=1e-6)


def test_a_failing_slow_drifting_canary_fails_with_the_measured_values(prometheus: str) -> None:
    outcome, result = analyse(prometheus, canary="3")
    assert outcome == "fail"
    assert [check.passed for check in result.checks] == [False, False, False, True, False]
    measured = values(result)
    assert measured["successRate"] == pytest.approx(60, abs=0.01)  # 4 of 10 answers are 500
    assert measured["latencyP99Ms"] == pytest.approx(250 + 250 * 0.99, abs=0.01)  # 400 ms each
    assert measured["compareWithStable"] == pytest.approx(40, abs=0.01)  # 40% vs stable's 0%
    assert measured["compareClientErrorsWithStable"] == pytest.approx(0, abs=1e-6)  # no 4xx
    # The exporter's per-second rates; PSI depends only on the shares (x100: enough samples).
    expected_psi = population_stability_index(
        {k: 100 * v for k, v in SHIFTED_CLASSES.items()},
        {k: 100 * v for k, v in HEALTHY_CLASSES.items()},
    )
    assert expected_psi is not None and expected_psi > 1
    assert measured["drift"] == pytest.approx(expected_psi, abs=1e-3)
    assert (result.success_rate, result.latency_p99_ms) == (
        measured["successRate"],
        measured["latencyP99Ms"],
    )
    assert result.message is not None and result.message.startswith("4 of 5 checks failed")


def test_a_same_named_model_in_another_namespace_is_never_counted(prometheus: str) -> None:
    # other/iris version 2 answers only 500s — its series exist and fail on their own ...
    outcome, result = analyse(prometheus, canary="2", namespace="other", spec=SPEC)
    assert outcome == "fail" and values(result)["successRate"] == 0
    # ... and ml/iris version 2 is judged on its own series alone.
    outcome, result = analyse(prometheus, canary="2", namespace="ml")
    assert outcome == "pass" and values(result)["successRate"] == 100


def test_series_without_a_namespace_label_are_found(prometheus: str) -> None:
    # Model `plain` is scraped without target labels; its version 2 answers 1 request in 11
    # with a 404 that stable never gives: counted by default, in both the success rate and the
    # comparison with stable.
    outcome, result = analyse(prometheus, canary="2", model="plain", namespace="ml")
    assert outcome == "fail"
    measured = values(result)
    assert measured["successRate"] == pytest.approx(100 * 10 / 11, abs=0.01)
    assert measured["compareClientErrorsWithStable"] == pytest.approx(100 / 11, abs=0.01)
    # Told to ignore client errors in the success rate, and to tolerate 10 points more 4xx.
    lenient = AnalysisSpec.model_validate(
        {
            **SPEC.model_dump(by_alias=True, exclude_none=True),
            "successRate": {"min": 99, "clientErrors": "Ignore"},
            "compareWithStable": {"maxErrorRateIncrease": 1, "maxClientErrorRateIncrease": 10},
        }
    )
    outcome, result = analyse(prometheus, canary="2", model="plain", namespace="ml", spec=lenient)
    assert outcome == "pass", result.message
    assert values(result)["successRate"] == 100


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(NoDataPolicy.FAIL, "fail"), (NoDataPolicy.PASS, "pass"), (NoDataPolicy.HOLD, "hold")],
)
def test_a_version_nobody_serves_has_no_data(
    prometheus: str, policy: NoDataPolicy, expected: str
) -> None:
    spec = SPEC.model_copy(update={"no_data": policy})
    outcome, result = analyse(prometheus, canary="9", spec=spec)
    assert outcome == expected
    assert all(check.value is None for check in result.checks)
    assert all(f"noData is {policy.value}" in (check.message or "") for check in result.checks)


def test_prometheus_errors_are_analysis_errors(prometheus: str) -> None:
    with pytest.raises(AnalysisError, match="HTTP 400: bad_data"):
        _query(prometheus, "sum(rate(modeldeploy_requests_total[5s])")
