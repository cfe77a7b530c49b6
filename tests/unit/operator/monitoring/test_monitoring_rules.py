"""The PrometheusRule: every alert, its scope, thresholds and `for` from the spec, runbooks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.monitoring import metrics, rules

from tests.unit.operator.factories import MakeMd
from tests.unit.operator.monitoring.support import crd_schema, metric_names, schema_errors

ALERTS = {
    "ModelDeploymentHighErrorRate",
    "ModelDeploymentHighLatency",
    "ModelDeploymentModelNotLoaded",
    "ModelDeploymentNoReadyPods",
    "ModelDeploymentInputDrift",
    "ModelDeploymentRolledBack",
}
THRESHOLDS = {
    "errorRatePercent": 2.5,
    "errorRateFor": "90s",
    "latencyP99Ms": 120,
    "latencyFor": "3m",
    "driftPsi": 0.3,
    "driftFor": "1h",
    "unavailableFor": "2m",
}


def _by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (group,) = groups
    return {rule["alert"]: rule for rule in group["rules"]}


def test_every_alert_once(make_md: MakeMd) -> None:
    (group,) = rules.build_rule_groups(make_md())
    names = [rule["alert"] for rule in group["rules"]]
    assert sorted(names) == sorted(ALERTS)
    assert group["name"] == "modeldeploy.models.iris"


def test_defaults_from_the_api(make_md: MakeMd) -> None:
    alerts = _by_name(rules.build_rule_groups(make_md()))
    assert alerts["ModelDeploymentHighErrorRate"]["for"] == "5m"
    assert alerts["ModelDeploymentHighErrorRate"]["expr"].endswith("> 5")
    assert alerts["ModelDeploymentHighLatency"]["expr"].endswith("> 500")
    assert alerts["ModelDeploymentInputDrift"]["expr"].endswith("> 0.25")
    assert alerts["ModelDeploymentInputDrift"]["for"] == "15m"
    assert "for" not in alerts["ModelDeploymentRolledBack"]


def test_thresholds_and_durations_from_the_spec(make_md: MakeMd) -> None:
    alerts = _by_name(rules.build_rule_groups(make_md(monitoring={"thresholds": THRESHOLDS})))
    expected = {
        "ModelDeploymentHighErrorRate": ("> 2.5", "90s"),
        "ModelDeploymentHighLatency": ("> 120", "3m"),
        "ModelDeploymentInputDrift": ("> 0.3", "1h"),
        "ModelDeploymentModelNotLoaded": ("< 1", "2m"),
        "ModelDeploymentNoReadyPods": (None, "2m"),
    }
    for name, (comparison, duration) in expected.items():
        assert alerts[name]["for"] == duration
        if comparison is not None:
            assert alerts[name]["expr"].endswith(comparison)
    assert "2.5%" in alerts["ModelDeploymentHighErrorRate"]["annotations"]["description"]
    assert "120ms" in alerts["ModelDeploymentHighLatency"]["annotations"]["description"]


def test_every_expression_is_scoped_to_the_model(make_md: MakeMd) -> None:
    for rule in rules.build_rule_groups(make_md("fraud"))[0]["rules"]:
        selectors = re.findall(r"\{[^{}]*\}", rule["expr"])
        assert selectors, rule["alert"]
        for selector in selectors:
            assert 'namespace="models"' in selector, (rule["alert"], selector)
            assert re.search(r'(model|name)="fraud"|deployment=~"fraud-v', selector), selector
        assert rule["labels"]["model"] == "fraud"
        assert rule["labels"]["severity"] in ("critical", "warning")


def test_runbooks_and_descriptions(make_md: MakeMd) -> None:
    for rule in rules.build_rule_groups(make_md())[0]["rules"]:
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}
        assert "models/iris" in annotations["summary"] + annotations["description"]
        assert annotations["runbook"].startswith("1. ")
        # Something to run or look at for this very model, not generic advice.
        assert re.search(r"-n models|namespace=\"models\"", annotations["runbook"]), rule["alert"]


def test_no_ready_pods_watches_every_live_version(make_md: MakeMd) -> None:
    md = make_md(model={"version": "3"}).model_copy(
        update={
            "status": make_md().status.model_copy(
                update={"stable_version": "1", "canary_version": "2.0"}
            )
        }
    )
    expr = _by_name(rules.build_rule_groups(md))["ModelDeploymentNoReadyPods"]["expr"]
    (pattern,) = set(re.findall(r'deployment=~"([^"]*)"', expr))
    assert sorted(pattern.split("|")) == sorted(
        ["iris-v1", "iris-v3", naming.track_name("iris", "2.0")]
    )
    assert "absent(modeldeploy_model_loaded" in expr


@pytest.mark.parametrize(
    "spec",
    [
        {"replicas": 0},
        {"autoscaling": {"minReplicas": 0, "maxReplicas": 4, "targetRequestsPerSecond": 10}},
    ],
)
def test_no_absent_clause_when_zero_pods_is_asked_for(make_md: MakeMd, spec: Any) -> None:
    expr = _by_name(rules.build_rule_groups(make_md(**spec)))["ModelDeploymentNoReadyPods"]["expr"]
    assert "absent(" not in expr
    assert "kube_deployment_spec_replicas" in expr


def test_queries_only_known_metrics(make_md: MakeMd) -> None:
    used: set[str] = set()
    for rule in rules.build_rule_groups(make_md())[0]["rules"]:
        used |= metric_names(rule["expr"])
    assert used <= metrics.KNOWN_METRICS, used - metrics.KNOWN_METRICS
    assert {metrics.REQUESTS_TOTAL, metrics.FEATURE_DRIFT, metrics.OPERATOR_ROLLED_BACK} <= used


def test_valid_against_the_prometheus_operator_crd(make_md: MakeMd) -> None:
    rule = rules.build_prometheus_rule(make_md(monitoring={"thresholds": THRESHOLDS}), {})
    assert schema_errors(rule, crd_schema("prometheusrules")) == []


def test_metric_name_extraction() -> None:
    expr = (
        '100 * sum by (namespace, le) (rate(a_total{code=~"5..",x="y{z}"}[5m])) / '
        'on (namespace) group_left b > 1e-05 or absent(c{d="e"}) and bool_metric'
    )
    assert metric_names(expr) == {"a_total", "b", "c", "bool_metric"}
