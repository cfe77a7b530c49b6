"""The PromQL vocabulary: selectors, model and version scopes, and that every query the project
builds (analysis, alert rules, KEDA trigger, dashboard) reads its metrics through it."""

from __future__ import annotations

import re

from modeldeploy_operator.monitoring import metrics as m
from modeldeploy_operator.rollout.analysis.queries import build_queries

from tests.unit.operator.monitoring.support import metric_names
from tests.unit.operator.rollout.analysis.analysis_specs import FULL


def test_selector_keeps_the_order_of_its_matchers_and_quotes_every_value() -> None:
    scope = m.version_scope(m.Regex('a"b|'), "iris", "1.2")
    assert m.selector(m.REQUESTS_TOTAL, scope, regex={m.CODE: "5.."}) == (
        'modeldeploy_requests_total{namespace=~"a\\"b|",model="iris",version="1.2",code=~"5.."}'
    )


def test_a_model_scope_always_names_the_namespace_first() -> None:
    assert list(m.model_scope("prod", "iris")) == [m.NAMESPACE, m.MODEL]
    assert list(m.version_scope("prod", "iris", "2")) == [m.NAMESPACE, m.MODEL, m.VERSION]


def test_a_namespace_or_unlabelled_matcher_escapes_the_namespace() -> None:
    assert m.namespace_or_unlabelled("prod") == m.Regex("prod|")
    assert m.namespace_or_unlabelled("a.b") == m.Regex("a\\.b|")


def test_analysis_queries_read_only_server_metrics_scoped_to_one_version() -> None:
    queries = build_queries(FULL, "prod", "iris", "2", "1", "1m")
    scoped = re.compile(r'\{namespace=~"prod\|",model="iris",version="[12]"(,code=~"[^"]*")?\}')
    for query in queries.values():
        assert metric_names(query) <= m.SERVER_METRICS, query
        selectors = re.findall(r"\{[^{}]*\}", query)
        assert selectors and all(scoped.fullmatch(s) for s in selectors), query
