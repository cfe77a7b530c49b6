"""The Grafana dashboard "modeldeploy / models": one model at a time, every version side by side.

Built here, written to `dashboard.json` beside this module (`python -m
modeldeploy_operator.monitoring.dashboard` rewrites it; a test fails when it is stale) and
shipped as a ConfigMap labelled `grafana_dashboard: "1"`, the label Grafana's dashboard sidecar
(kube-prometheus-stack) loads dashboards from.

Variables: the Prometheus data source, then namespace, model and version(s), all read from
`modeldeploy_model_loaded`, which every serving pod exports from its first scrape.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

from modeldeploy_operator import naming
from modeldeploy_operator.monitoring import metrics as m

PATH: Final = Path(__file__).with_name("dashboard.json")
UID: Final = "modeldeploy-models"
TITLE: Final = "modeldeploy / models"
CONFIG_MAP_LABEL: Final = "grafana_dashboard"
DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
RATE: Final = "$__rate_interval"
WIDTH: Final = 24
HEIGHT: Final = 8

_MODEL = m.model_scope("$namespace", "$model")
_VERSIONS = {m.VERSION: "$version"}


def _series(metric: str, *, regex: dict[str, str] | None = None) -> str:
    """`metric` of the chosen model and versions."""
    return m.selector(metric, _MODEL, regex={**_VERSIONS, **(regex or {})})


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "range": True,
    }


def _panel(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    *,
    unit: str,
    width: int,
    minimum: float | None = 0,
    maximum: float | None = None,
    thresholds: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A time series panel; `targets` are (expr, legend) pairs; `thresholds` draws lines."""
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if thresholds:
        defaults["custom"]["thresholdsStyle"] = {"mode": "line+area"}
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}]
            + [{"color": color, "value": value} for color, value in thresholds],
        }
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": width, "x": 0, "y": 0},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            _target(chr(ord("A") + i), expr, legend) for i, (expr, legend) in enumerate(targets)
        ],
    }


def _panels() -> list[dict[str, Any]]:
    per_version = "sum by (version)"
    requests = f"rate({_series(m.REQUESTS_TOTAL)}[{RATE}])"
    errors = f"rate({_series(m.REQUESTS_TOTAL, regex={m.CODE: m.SERVER_ERROR_CODES})}[{RATE}])"
    latency = f"sum by (version, le) (rate({_series(m.REQUEST_DURATION_BUCKET)}[{RATE}]))"
    values = f"sum by (version, le) (rate({_series(m.PREDICTION_VALUE_BUCKET)}[{RATE}]))"
    deployments = m.selector(
        m.KSM_REPLICAS_READY, {"namespace": "$namespace"}, regex={"deployment": "$model-v.+"}
    )
    weight = m.selector(m.OPERATOR_CANARY_WEIGHT, {"namespace": "$namespace", "name": "$model"})
    return [
        _panel(
            "Requests/s",
            "Inference requests per second (V1 :predict and V2 /infer; probes, metadata and "
            "scrapes excluded).",
            [(f"{per_version} ({requests})", "{{version}}")],
            unit="reqps",
            width=8,
        ),
        _panel(
            "Error rate",
            "Share of requests answered with a 5xx status.",
            [(f"100 * {per_version} ({errors}) / {per_version} ({requests})", "{{version}}")],
            unit="percent",
            width=8,
        ),
        _panel(
            "Latency p50 / p99",
            "Request duration percentiles, from the server's histogram.",
            [
                (f"histogram_quantile(0.5, {latency})", "p50 {{version}}"),
                (f"histogram_quantile(0.99, {latency})", "p99 {{version}}"),
            ],
            unit="s",
            width=8,
        ),
        _panel(
            "Canary weight",
            "Percent of traffic the operator sends to the canary during a rollout.",
            [(f"max by (version) ({weight})", "canary {{version}}")],
            unit="percent",
            width=8,
            maximum=100,
        ),
        _panel(
            "Replicas ready",
            "Ready pods per version's Deployment (kube-state-metrics), and pods whose model "
            "is loaded (the servers' own gauge).",
            [
                (f"sum by (deployment) ({deployments})", "ready {{deployment}}"),
                (
                    f"count by (version) ({_series(m.MODEL_LOADED)} == 1)",
                    "model loaded {{version}}",
                ),
            ],
            unit="short",
            width=8,
        ),
        _panel(
            "Drift window rows",
            "Rows in each pod's drift window; PSI is reported once enough rows arrived.",
            [(f"sum by (version) ({_series(m.DRIFT_WINDOW_ROWS)})", "{{version}}")],
            unit="short",
            width=8,
        ),
        _panel(
            "Predictions by class",
            "Predicted rows per second by class (classifiers).",
            [
                (
                    f"sum by (version, class) (rate({_series(m.PREDICTIONS_TOTAL)}[{RATE}]))",
                    "{{version}} {{class}}",
                )
            ],
            unit="short",
            width=12,
        ),
        _panel(
            "Prediction value p10 / p50 / p90",
            "Distribution of predicted values (regressors).",
            [
                (f"histogram_quantile({q}, {values})", f"p{round(q * 100)} {{{{version}}}}")
                for q in (0.1, 0.5, 0.9)
            ],
            unit="short",
            width=12,
            minimum=None,
        ),
        _panel(
            "Input drift (PSI) per feature",
            "Population stability index of each feature's recent inputs against the "
            "training data: below 0.1 no shift, 0.1 to 0.25 moderate, above 0.25 major.",
            [
                (
                    f"max by (version, feature) ({_series(m.FEATURE_DRIFT)})",
                    "{{version}} {{feature}}",
                )
            ],
            unit="short",
            width=WIDTH,
            thresholds=[("orange", 0.1), ("red", 0.25)],
        ),
    ]


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids in order and grid positions left to right, wrapping at the dashboard's width."""
    x = y = 0
    for number, panel in enumerate(panels, start=1):
        width = panel["gridPos"]["w"]
        if x + width > WIDTH:
            x, y = 0, y + HEIGHT
        panel["id"] = number
        panel["gridPos"] = {"h": HEIGHT, "w": width, "x": x, "y": y}
        x += width
    return panels


def _query_variable(name: str, label: str, query: str, *, multi: bool = False) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
    }
    if multi:
        variable["allValue"] = ".*"
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def build_dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    loaded = m.MODEL_LOADED
    return {
        "uid": UID,
        "title": TITLE,
        "description": "Traffic, errors, latency, predictions, drift and rollouts of models "
        "served by modeldeploy, per version.",
        "tags": ["modeldeploy"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "refresh": 1,
                },
                _query_variable("namespace", "Namespace", f"label_values({loaded}, namespace)"),
                _query_variable(
                    "model",
                    "Model",
                    f"label_values({m.selector(loaded, {'namespace': '$namespace'})}, model)",
                ),
                _query_variable(
                    "version",
                    "Version",
                    f"label_values({m.selector(loaded, _MODEL)}, version)",
                    multi=True,
                ),
            ]
        },
        "panels": _layout(_panels()),
    }


def render() -> str:
    """The dashboard as the text of `dashboard.json`."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


def dashboard_config_map(namespace: str, name: str = "modeldeploy-dashboard") -> dict[str, Any]:
    """A ConfigMap carrying the dashboard, for Grafana's dashboard sidecar to load."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                CONFIG_MAP_LABEL: "1",
                naming.LABEL_PART_OF: naming.PART_OF,
            },
        },
        "data": {"modeldeploy-models.json": render()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the modeldeploy Grafana dashboard.")
    parser.add_argument("--output", type=Path, default=PATH, help=f"default: {PATH}")
    args = parser.parse_args(argv)
    args.output.write_text(render())


if __name__ == "__main__":
    main()
