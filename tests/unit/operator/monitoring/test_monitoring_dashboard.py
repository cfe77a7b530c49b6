"""The Grafana dashboard, validated structurally: the shipped file is current, every panel and
query has the data source, queries parse (promtool) and read only metrics that exist, the grid
has no overlaps, and every panel the issue asks for is there."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import modeldeploy_operator.monitoring.dashboard as dashboard
from modeldeploy_operator.monitoring import metrics

from tests.unit.operator.monitoring.support import check_rules, metric_names, needs_promtool

ROOT = Path(__file__).resolve().parents[4]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = dashboard.build_dashboard()["panels"]
    return panels


def _exprs() -> list[str]:
    return [target["expr"] for panel in _panels() for target in panel["targets"]]


def _concrete(expr: str) -> str:
    """A Grafana query as Prometheus would receive it, variables substituted."""
    expr = expr.replace("$__rate_interval", "1m")
    return re.sub(r"\$(\w+)", lambda m: "x" if m.group(1) != "version" else ".*", expr)


def test_shipped_json_is_current() -> None:
    assert dashboard.PATH.read_text() == dashboard.render(), (
        "dashboard.json is stale: python -m modeldeploy_operator.monitoring.dashboard"
    )
    assert json.loads(dashboard.PATH.read_text()) == dashboard.build_dashboard()


def test_every_panel_and_query_has_the_datasource() -> None:
    for panel in _panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids)
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert target["expr"] and target["legendFormat"]


def test_variables_chain_from_the_datasource() -> None:
    variables = {v["name"]: v for v in dashboard.build_dashboard()["templating"]["list"]}
    assert list(variables) == ["datasource", "namespace", "model", "version"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "model", "version"):
        assert variables[name]["datasource"] == DATASOURCE
    assert "$namespace" in variables["model"]["definition"]
    assert "$model" in variables["version"]["definition"]
    assert variables["version"]["multi"] and variables["version"]["includeAll"]


def test_queries_read_only_known_metrics() -> None:
    used = set().union(*(metric_names(expr) for expr in _exprs()))
    assert used <= metrics.KNOWN_METRICS, used - metrics.KNOWN_METRICS
    variables = dashboard.build_dashboard()["templating"]["list"][1:]
    for variable in variables:
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
        assert match is not None and match.group(2) == variable["name"]
        assert metric_names(match.group(1)) <= metrics.KNOWN_METRICS


def test_queries_select_the_chosen_model() -> None:
    for panel in _panels():
        for target in panel["targets"]:
            for selector in re.findall(r"\{[^{}]*\}", target["expr"]):
                assert 'namespace="$namespace"' in selector, (panel["title"], selector)
                assert re.search(r'(model|name)="\$model"|deployment=~"\$model-v', selector)


def test_server_metric_names_exist_in_the_server() -> None:
    """The server's families, by name, in its source (suffixes are prometheus_client's)."""
    source = (ROOT / "serving" / "modeldeploy_serving" / "metrics.py").read_text()
    for name in metrics.SERVER_METRICS:
        family = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert f'"{family}"' in source, name


@needs_promtool
def test_queries_parse(tmp_path: Path) -> None:
    recording = [
        {"record": f"dashboard:query{i}", "expr": _concrete(expr)}
        for i, expr in enumerate(_exprs())
    ]
    check_rules([{"name": "dashboard", "rules": recording}], tmp_path)


def test_grid_has_no_overlaps() -> None:
    cells: set[tuple[int, int]] = set()
    ids = []
    for panel in _panels():
        ids.append(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
        covered = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & covered, panel["title"]
        cells |= covered
    assert len(set(ids)) == len(ids)


def test_every_view_the_issue_asks_for() -> None:
    uses = {metric for expr in _exprs() for metric in metric_names(expr)}
    exprs = " ".join(_exprs())
    assert metrics.REQUESTS_TOTAL in uses  # requests/s and error rate
    assert 'code=~"5.."' in exprs
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    assert metrics.OPERATOR_CANARY_WEIGHT in uses
    assert metrics.PREDICTIONS_TOTAL in uses
    assert metrics.FEATURE_DRIFT in uses
    assert metrics.KSM_REPLICAS_READY in uses


def test_config_map_for_the_grafana_sidecar() -> None:
    config_map = dashboard.dashboard_config_map("monitoring")
    assert config_map["metadata"]["labels"][dashboard.CONFIG_MAP_LABEL] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    (text,) = config_map["data"].values()
    assert json.loads(text)["uid"] == dashboard.UID
