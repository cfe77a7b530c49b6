"""Analysis queries: the PromQL generated for each check."""

from __future__ import annotations

import pytest
from modeldeploy_operator.rollout.analysis.queries import build_queries, promql_duration

from tests.unit.operator.rollout.analysis.analysis_specs import FULL, spec

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
