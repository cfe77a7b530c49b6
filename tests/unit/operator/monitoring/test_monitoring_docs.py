"""docs/monitoring.md keeps up with the code: alerts, operator metrics, the adapter rule."""

from __future__ import annotations

import re
from pathlib import Path

import modeldeploy_operator.monitoring.keda as keda
from modeldeploy_operator.builders.hpa import RPS_METRIC
from modeldeploy_operator.monitoring import metrics, rules

from tests.unit.operator.factories import MakeMd

ROOT = Path(__file__).resolve().parents[4]
DOC = (ROOT / "docs" / "monitoring.md").read_text()
TELEMETRY = (ROOT / "operator" / "modeldeploy_operator" / "telemetry.py").read_text()
EXPORTED = set(re.findall(r'"(modeldeploy_operator_\w+)"', TELEMETRY))


def test_every_alert_is_documented(make_md: MakeMd) -> None:
    for rule in rules.build_rule_groups(make_md())[0]["rules"]:
        assert f"`{rule['alert']}`" in DOC
        assert f"**{rule['alert']}.**" in DOC, f"runbook of {rule['alert']}"


def test_every_operator_metric_is_documented() -> None:
    assert EXPORTED, "telemetry.py names no metrics?"
    for name in EXPORTED | metrics.OPERATOR_METRICS:
        assert f"`{name}`" in DOC, name


def test_scale_to_zero_names_are_documented() -> None:
    for text in (keda.ANNOTATION_WAKE_QUERY, keda.REASON_UNAVAILABLE, keda.REASON_NO_WAKE_QUERY):
        assert text in DOC


def test_adapter_rule_serves_the_hpa_metric() -> None:
    assert f'as: "{RPS_METRIC}"' in DOC
    assert f"seriesQuery: '{metrics.REQUESTS_TOTAL}{{" in DOC


def test_operator_exports_the_metrics_monitoring_reads() -> None:
    assert metrics.OPERATOR_METRICS <= EXPORTED, metrics.OPERATOR_METRICS - EXPORTED
