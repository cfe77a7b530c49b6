"""The analysis's Prometheus client and a whole analysis, over real HTTP (an aiohttp server
standing in for Prometheus's query API)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from modeldeploy_operator.api import AnalysisSpec
from modeldeploy_operator.rollout.analysis import prometheus
from modeldeploy_operator.rollout.analysis.drift import population_stability_index
from modeldeploy_operator.rollout.analysis.prometheus import AnalysisError, query_prometheus
from modeldeploy_operator.rollout.analysis.run import run_analysis

from tests.unit.operator.rollout.analysis.analysis_specs import FULL, NOW, spec

# ---------------------------------------------------------------------------------------------
# Prometheus over HTTP.

Handler = Callable[[web.Request], Any]


def serve(handler: Handler, test: Callable[[aiohttp.ClientSession, str], Any]) -> Any:
    async def main() -> Any:
        app = web.Application()
        app.router.add_get("/prefix/api/v1/query", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                return await test(session, str(server.make_url("/prefix/")))
        finally:
            await server.close()

    return asyncio.run(main())


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1754049600.0, v]} for m, v in samples],
        },
    }


def answer(body: dict[str, Any], status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        assert request.query["query"] == "up"
        return web.json_response(body, status=status)

    return handler


def query(body: dict[str, Any], status: int = 200) -> Any:
    return serve(answer(body, status), lambda session, url: query_prometheus(session, url, "up"))


def test_one_sample_is_its_value() -> None:
    assert query(vector(({}, "99.5"))) == 99.5


def test_a_scalar_result_is_its_value() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    assert query(body) == 3.0


def test_empty_and_nan_results_are_no_data() -> None:
    assert query(vector()) is None
    assert query(vector(({}, "NaN"))) is None


def test_several_series_are_an_error_not_a_guess() -> None:
    with pytest.raises(AnalysisError, match="returned 2 series where one number was expected"):
        query(vector(({"a": "1"}, "1"), ({"a": "2"}, "2")))


def test_a_rejected_query_reports_prometheus_s_error() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}
    with pytest.raises(AnalysisError) as caught:
        query(body, status=400)
    assert "answered HTTP 400: bad_data: parse error" in str(caught.value)
    assert caught.value.status == 400 and caught.value.query == "up"


def test_a_non_prometheus_answer_is_an_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad Gateway</html>")

    with pytest.raises(AnalysisError, match="HTTP 502 without a Prometheus API body: <html>Bad"):
        serve(handler, lambda session, url: query_prometheus(session, url, "up"))


def test_an_unreachable_prometheus_is_an_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await query_prometheus(session, f"http://127.0.0.1:{port}", "up")

    with pytest.raises(
        AnalysisError, match=f"cannot reach Prometheus at http://127.0.0.1:{port}/api"
    ):
        asyncio.run(main())


def test_a_slow_prometheus_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "QUERY_TIMEOUT_SECONDS", 0.2)

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response(vector())

    with pytest.raises(AnalysisError, match="cannot reach Prometheus"):
        serve(handler, lambda session, url: query_prometheus(session, url, "up"))


def fake_prometheus(answers: dict[str, dict[str, Any]], seen: list[str]) -> Handler:
    """Answers each query by the first marker (a substring) it contains."""

    async def handler(request: web.Request) -> web.Response:
        promql = request.query["query"]
        seen.append(promql)
        for marker, body in answers.items():
            if marker in promql:
                return web.json_response(body)
        return web.json_response(vector())

    return handler


def analyse(answers: dict[str, dict[str, Any]], s: AnalysisSpec, seen: list[str]) -> Any:
    return serve(
        fake_prometheus(answers, seen),
        lambda session, url: run_analysis(session, url, s, "ns", "iris", "2", "1", 3, NOW),
    )


def test_run_analysis_queries_each_check_and_computes_drift_from_both_versions() -> None:
    seen: list[str] = []
    answers = {
        "100 * (1 - ": vector(({}, "97.5")),
        "histogram_quantile": vector(({}, "120")),
        "100 * (((": vector(({}, "0.25")),
        'predictions_total{namespace=~"ns|",model="iris",version="2"}': vector(
            ({"class": "a"}, "50"), ({"class": "b"}, "50")
        ),
        'predictions_total{namespace=~"ns|",model="iris",version="1"}': vector(
            ({"class": "a"}, "80"), ({"class": "b"}, "20")
        ),
    }
    outcome, result = analyse(answers, FULL, seen)
    assert len(seen) == 6
    assert outcome == "fail"
    assert result.step == 3
    assert result.success_rate == 97.5 and result.latency_p99_ms == 120
    assert result.error_rate_increase == 0.25 and result.client_error_rate_increase == 0.25
    assert result.drift_psi == round(
        population_stability_index({"a": 50, "b": 50}, {"a": 80, "b": 20}) or 0, 4
    )
    assert [c.passed for c in result.checks] == [False, True, True, True, False]


def test_run_analysis_uses_the_spec_window() -> None:
    seen: list[str] = []
    analyse({}, spec(successRate={"min": 1}, interval="2m", noData="Pass"), seen)
    assert all("[120s]" in q for q in seen)


def test_run_analysis_has_no_verdict_when_a_query_fails() -> None:
    broken = {"status": "error", "errorType": "execution", "error": "query timed out"}
    with pytest.raises(AnalysisError, match="query timed out"):
        analyse({"histogram_quantile": broken}, FULL, [])
