"""Analysis: the PromQL it generates, PSI, the verdict, and the Prometheus client over real HTTP
(an aiohttp server standing in for Prometheus's query API)."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from modeldeploy_operator.api import AnalysisSpec
from modeldeploy_operator.rollout import analysis
from modeldeploy_operator.rollout.analysis import (
    AnalysisError,
    build_queries,
    evaluate,
    population_stability_index,
    prediction_psi,
    promql_duration,
    query_prometheus,
    run_analysis,
)

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)


def spec(**fields: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate(fields)


FULL = spec(
    successRate={"min": 99},
    latencyP99Ms={"max": 250},
    compareWithStable={"maxErrorRateIncrease": 1},
    drift={"maxPsi": 0.2},
)

# ---------------------------------------------------------------------------------------------
# Queries.


def test_success_rate_query_counts_4xx_and_5xx_against_all_requests_of_the_canary() -> None:
    q = build_queries(spec(successRate={"min": 99}), "prod", "iris", "2", "1", "1m")
    sel = '{namespace=~"prod|",model="iris",version="2"'
    assert q == {
        "successRate": (
            f'100 * (1 - ((sum(rate(modeldeploy_requests_total{sel},code=~"4..|5.."}}[60s]))'
            f" or vector(0)) / sum(rate(modeldeploy_requests_total{sel}}}[60s]))))"
        )
    }


def test_success_rate_query_with_client_errors_ignored_counts_5xx_only() -> None:
    s = spec(successRate={"min": 99, "clientErrors": "Ignore"})
    q = build_queries(s, "prod", "iris", "2", "1", "1m")
    sel = '{namespace=~"prod|",model="iris",version="2"'
    assert q == {
        "successRate": (
            f'100 * (1 - ((sum(rate(modeldeploy_requests_total{sel},code=~"5.."}}[60s]))'
            f" or vector(0)) / sum(rate(modeldeploy_requests_total{sel}}}[60s]))))"
        )
    }


def test_latency_query_is_the_p99_of_the_canary_in_milliseconds() -> None:
    q = build_queries(spec(latencyP99Ms={"max": 100}), "prod", "iris", "2", "1", "30s")
    assert q == {
        "latencyP99Ms": "1000 * histogram_quantile(0.99, sum by (le) (rate("
        'modeldeploy_request_duration_seconds_bucket{namespace=~"prod|",model="iris",'
        'version="2"}[30s])))'
    }


def test_comparison_subtracts_stable_error_ratio_from_canary_error_ratio() -> None:
    q = build_queries(
        spec(compareWithStable={"maxErrorRateIncrease": 2}), "ns", "m", "b", "a", "1m"
    )
    query = q["compareWithStable"]
    assert query.startswith("100 * (((")
    canary_at = query.index('version="b"')
    stable_at = query.index('version="a"')
    assert canary_at < query.index(") - ((") < stable_at
    assert query.count('code=~"5.."') == 2 and "4.." not in query


def test_comparison_also_subtracts_stable_4xx_ratio_from_the_canary_s() -> None:
    q = build_queries(
        spec(compareWithStable={"maxErrorRateIncrease": 2}), "ns", "m", "b", "a", "1m"
    )
    client = q["compareClientErrorsWithStable"]

    def ratio(version: str) -> str:
        selector = f'namespace=~"ns|",model="m",version="{version}"'
        errors = f'sum(rate(modeldeploy_requests_total{{{selector},code=~"4.."}}[60s]))'
        total = f"sum(rate(modeldeploy_requests_total{{{selector}}}[60s]))"
        return f"(({errors} or vector(0)) / {total})"

    assert client == f"100 * ({ratio('b')} - {ratio('a')})"


def test_drift_reads_class_counts_or_value_buckets_of_both_versions() -> None:
    q = build_queries(spec(drift={"maxPsi": 0.1}), "ns", "m", "2", "1", "5m")
    assert set(q) == {"drift.canary", "drift.stable"}
    for key, version in (("drift.canary", "2"), ("drift.stable", "1")):
        sel = f'{{namespace=~"ns|",model="m",version="{version}"}}'
        assert q[key] == (
            f"sum by (class) (increase(modeldeploy_predictions_total{sel}[300s]))"
            f" or sum by (le) (increase(modeldeploy_prediction_value_bucket{sel}[300s]))"
        )


def test_only_configured_checks_are_queried() -> None:
    assert set(build_queries(FULL, "ns", "m", "2", "1", "1m")) == {
        "successRate",
        "latencyP99Ms",
        "compareWithStable",
        "compareClientErrorsWithStable",
        "drift.canary",
        "drift.stable",
    }
    assert set(build_queries(spec(latencyP99Ms={"max": 1}), "ns", "m", "2", "1", "1m")) == {
        "latencyP99Ms"
    }


def test_versions_with_dots_are_matched_literally_not_as_a_regex() -> None:
    q = build_queries(spec(successRate={"min": 1}), "ns", "m", "1.0_rc-1", "0.9", "1m")
    assert 'version="1.0_rc-1"' in q["successRate"]
    assert "version=~" not in q["successRate"]


@pytest.mark.parametrize(
    ("namespace", "model", "version"),
    [('ns"}', "m", "1"), ("ns|.*", "m", "1"), ("ns", 'm"', "1"), ("ns", "m", '1"} or up{')],
)
def test_values_that_could_break_out_of_a_matcher_are_refused(
    namespace: str, model: str, version: str
) -> None:
    with pytest.raises(ValueError, match="does not match"):
        build_queries(spec(successRate={"min": 1}), namespace, model, version, "1", "1m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1m", "60s"), ("90s", "90s"), ("1h30m", "5400s"), ("1.5s", "1500ms"), ("250ms", "250ms")],
)
def test_windows_become_promql_ranges(text: str, expected: str) -> None:
    assert promql_duration(text) == expected


def test_a_malformed_window_is_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        promql_duration("1 minute")


# ---------------------------------------------------------------------------------------------
# PSI.


def test_psi_of_a_known_shift() -> None:
    # (0.5 - 0.8) ln(0.5/0.8) + (0.5 - 0.2) ln(0.5/0.2)
    expected = -0.3 * math.log(0.625) + 0.3 * math.log(2.5)
    assert population_stability_index({"a": 50, "b": 50}, {"a": 80, "b": 20}) == pytest.approx(
        expected
    )


def test_psi_of_a_class_only_one_version_predicts_is_large_but_finite() -> None:
    psi = population_stability_index({"a": 100}, {"a": 50, "b": 50})
    assert psi is not None and 1 < psi < 10


def test_psi_needs_enough_predictions_on_both_sides() -> None:
    few = analysis.MIN_DRIFT_SAMPLES - 1
    assert population_stability_index({"a": few}, {"a": 1000}) is None
    assert population_stability_index({"a": 1000}, {"a": few}) is None
    assert population_stability_index({"a": few + 1}, {"a": few + 1}) == 0


counts = st.dictionaries(
    st.sampled_from("abcdef"), st.floats(min_value=0, max_value=1e6), min_size=1
).filter(lambda d: sum(d.values()) >= analysis.MIN_DRIFT_SAMPLES)


@given(counts, counts, st.floats(min_value=1, max_value=1000))
def test_psi_is_symmetric_non_negative_and_depends_only_on_shares(
    p: dict[str, float], q: dict[str, float], scale: float
) -> None:
    forward = population_stability_index(p, q)
    assert forward is not None and forward >= 0
    assert population_stability_index(q, p) == pytest.approx(forward, rel=1e-9, abs=1e-12)
    scaled = population_stability_index({k: v * scale for k, v in p.items()}, q)
    assert scaled == pytest.approx(forward, rel=1e-6, abs=1e-9)
    assert population_stability_index(p, p) == pytest.approx(0, abs=1e-12)


def classes(**n: float) -> list[tuple[dict[str, str], float]]:
    return [({"class": name}, value) for name, value in n.items()]


def buckets(*cumulative: tuple[str, float]) -> list[tuple[dict[str, str], float]]:
    return [({"le": le}, value) for le, value in cumulative]


def test_prediction_psi_compares_class_counts() -> None:
    assert prediction_psi(classes(a=50, b=50), classes(a=80, b=20)) == pytest.approx(
        population_stability_index({"a": 50, "b": 50}, {"a": 80, "b": 20})
    )


def test_prediction_psi_turns_cumulative_buckets_into_bins() -> None:
    canary = buckets(("0.5", 10), ("1", 40), ("+Inf", 100))
    stable = buckets(("+Inf", 100), ("0.5", 30), ("1", 60))  # order does not matter
    assert prediction_psi(canary, stable) == pytest.approx(
        population_stability_index(
            {"0.5": 10, "1": 30, "+Inf": 60}, {"0.5": 30, "1": 30, "+Inf": 40}
        )
    )


def test_prediction_psi_uses_only_the_bucket_bounds_both_versions_have() -> None:
    canary = buckets(("0.5", 10), ("1", 40), ("+Inf", 100))
    stable = buckets(("1", 60), ("+Inf", 100))
    assert prediction_psi(canary, stable) == pytest.approx(
        population_stability_index({"1": 40, "+Inf": 60}, {"1": 60, "+Inf": 40})
    )


def test_extrapolation_artefacts_never_make_a_negative_bin() -> None:
    canary = buckets(("0.5", 30.2), ("1", 30.0), ("+Inf", 100))
    psi = prediction_psi(canary, buckets(("0.5", 30), ("1", 30), ("+Inf", 100)))
    assert psi is not None and psi < 0.01


def test_prediction_psi_has_no_data_for_a_classifier_against_a_regressor_or_nothing() -> None:
    assert prediction_psi(classes(a=100), buckets(("+Inf", 100))) is None
    assert prediction_psi([], classes(a=100)) is None
    assert prediction_psi(classes(a=math.nan), classes(a=100)) is None


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
    monkeypatch.setattr(analysis, "QUERY_TIMEOUT_SECONDS", 0.2)

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
