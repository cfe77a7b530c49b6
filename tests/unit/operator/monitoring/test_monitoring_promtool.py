"""The generated rules in promtool: `check rules` accepts them, and `test rules` shows each alert
firing on synthetic series that should fire it, and staying quiet on those that should not
(another version, another model, another namespace, below the threshold, shorter than `for`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.monitoring import rules

from tests.unit.operator.factories import MakeMd
from tests.unit.operator.monitoring.support import check_rules, needs_promtool, promtool

pytestmark = needs_promtool

NS = 'namespace="models"'
IRIS = f'{NS},model="iris"'


def _without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """promtool compares annotations exactly when an alert fires; these tests are about the
    expressions, labels and durations (the templates are checked by `check rules` and rendered
    by the real Prometheus in tests/prometheus)."""
    groups = copy.deepcopy(groups)
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return groups


def _run(
    md: ModelDeployment,
    series: dict[str, str],
    checks: list[tuple[str, str, list[dict[str, str]]]],
    tmp_path: Path,
) -> None:
    """Feed `series` (selector → promtool values, one sample a minute) and expect, per
    (eval time, alert name), exactly the listed alerts' labels."""
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": _without_annotations(rules.build_rule_groups(md))})
    )
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": alert,
                        "exp_alerts": [{"exp_labels": labels} for labels in expected],
                    }
                    for at, alert, expected in checks
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    result = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _labels(severity: str, **labels: str) -> dict[str, str]:
    return {"severity": severity, "model": "iris", **labels}


@pytest.mark.parametrize(
    "monitoring",
    [
        {},
        {
            "thresholds": {
                "errorRatePercent": 0.001,
                "errorRateFor": "0",
                "latencyP99Ms": 1e6,
                "driftPsi": 9.99,
                "driftFor": "1w2d3h",
                "unavailableFor": "30s",
            }
        },
    ],
)
def test_check_rules_accepts_them(
    make_md: MakeMd, tmp_path: Path, monitoring: dict[str, Any]
) -> None:
    md = make_md(model={"version": "2.0-rc_1"}, monitoring=monitoring)
    check_rules(rules.build_rule_groups(md), tmp_path)


def test_high_error_rate(make_md: MakeMd, tmp_path: Path) -> None:
    def requests(labels: str, code: int) -> str:
        return f'modeldeploy_requests_total{{{labels},protocol="v2",code="{code}"}}'

    series = {
        # version 1: 10% errors; version 2: 2%; below the default 5%.
        requests(f'{IRIS},version="1"', 200): "0+90x30",
        requests(f'{IRIS},version="1"', 500): "0+10x30",
        requests(f'{IRIS},version="2"', 200): "0+98x30",
        requests(f'{IRIS},version="2"', 503): "0+2x30",
        # Another model, and the same name in another namespace: all errors, none of ours.
        requests(f'{NS},model="fraud",version="1"', 500): "0+50x30",
        requests('namespace="staging",model="iris",version="1"', 500): "0+50x30",
    }
    fired = _labels("critical", namespace="models", version="1")
    _run(
        make_md(),
        series,
        [
            ("4m", "ModelDeploymentHighErrorRate", []),  # pending: for 5m
            ("10m", "ModelDeploymentHighErrorRate", [fired]),
        ],
        tmp_path,
    )


def test_error_rate_threshold_from_the_spec(make_md: MakeMd, tmp_path: Path) -> None:
    md = make_md(monitoring={"thresholds": {"errorRatePercent": 1, "errorRateFor": "1m"}})
    series = {
        f'modeldeploy_requests_total{{{IRIS},version="2",protocol="v1",code="200"}}': "0+98x30",
        f'modeldeploy_requests_total{{{IRIS},version="2",protocol="v1",code="500"}}': "0+2x30",
    }
    fired = _labels("critical", namespace="models", version="2")
    _run(md, series, [("5m", "ModelDeploymentHighErrorRate", [fired])], tmp_path)


def test_high_latency(make_md: MakeMd, tmp_path: Path) -> None:
    def bucket(version: str, le: str) -> str:
        return (
            f"modeldeploy_request_duration_seconds_bucket"
            f'{{{IRIS},version="{version}",protocol="v2",le="{le}"}}'
        )

    series = {
        # version 1: every request between 0.5s and 1s → p99 near 1s; version 2: under 0.1s.
        bucket("1", "0.1"): "0x30",
        bucket("1", "0.5"): "0x30",
        bucket("1", "1.0"): "0+10x30",
        bucket("1", "+Inf"): "0+10x30",
        bucket("2", "0.1"): "0+10x30",
        bucket("2", "0.5"): "0+10x30",
        bucket("2", "1.0"): "0+10x30",
        bucket("2", "+Inf"): "0+10x30",
    }
    fired = _labels("warning", namespace="models", version="1")
    _run(make_md(), series, [("10m", "ModelDeploymentHighLatency", [fired])], tmp_path)
    relaxed = make_md(monitoring={"thresholds": {"latencyP99Ms": 2000}})
    _run(relaxed, series, [("10m", "ModelDeploymentHighLatency", [])], tmp_path)


def test_input_drift(make_md: MakeMd, tmp_path: Path) -> None:
    def drift(version: str, feature: str, pod: str = "a") -> str:
        return (
            f'modeldeploy_feature_drift{{{IRIS},version="{version}",feature="{feature}",'
            f'pod="iris-{pod}"}}'
        )

    series = {
        drift("1", "petal_length"): "0.4x40",
        drift("1", "petal_length", pod="b"): "0.1x40",  # the max over pods counts
        drift("1", "sepal_width"): "0.05x40",
        drift("2", "petal_length"): "0.2x40",
    }
    fired = _labels("warning", namespace="models", version="1", feature="petal_length")
    _run(
        make_md(),
        series,
        [
            ("10m", "ModelDeploymentInputDrift", []),  # pending: for 15m
            ("20m", "ModelDeploymentInputDrift", [fired]),
        ],
        tmp_path,
    )


def test_model_not_loaded(make_md: MakeMd, tmp_path: Path) -> None:
    def loaded(version: str, pod: str) -> str:
        return f'modeldeploy_model_loaded{{{IRIS},version="{version}",pod="{pod}"}}'

    series = {
        loaded("1", "iris-v1-a"): "0x20",
        loaded("1", "iris-v1-b"): "0x20",
        loaded("2", "iris-v2-a"): "1x20",  # one pod loaded is enough to serve
        loaded("2", "iris-v2-b"): "0x20",
    }
    fired = _labels("critical", namespace="models", version="1")
    _run(make_md(), series, [("10m", "ModelDeploymentModelNotLoaded", [fired])], tmp_path)


def _rollout(make_md: MakeMd, **spec: Any) -> ModelDeployment:
    md = make_md(model={"version": "2"}, **spec)
    status = md.status.model_copy(update={"stable_version": "1", "canary_version": "2"})
    return md.model_copy(update={"status": status})


def test_no_ready_pods(make_md: MakeMd, tmp_path: Path) -> None:
    def ksm(metric: str, deployment: str, namespace: str = "models") -> str:
        return f'kube_deployment_{metric}{{namespace="{namespace}",deployment="{deployment}"}}'

    series = {
        ksm("status_replicas_ready", "iris-v1"): "2x20",
        ksm("spec_replicas", "iris-v1"): "2x20",
        ksm("status_replicas_ready", "iris-v2"): "0x20",  # the canary has none ready
        ksm("spec_replicas", "iris-v2"): "1x20",
        ksm("status_replicas_ready", "fraud-v1"): "0x20",
        ksm("spec_replicas", "fraud-v1"): "3x20",
        ksm("status_replicas_ready", "iris-v1", "staging"): "0x20",
        ksm("spec_replicas", "iris-v1", "staging"): "3x20",
        f'modeldeploy_model_loaded{{{IRIS},version="1",pod="iris-v1-a"}}': "1x20",
    }
    fired = _labels("critical", namespace="models", deployment="iris-v2")
    _run(_rollout(make_md), series, [("10m", "ModelDeploymentNoReadyPods", [fired])], tmp_path)


def test_no_pod_scraped_at_all(make_md: MakeMd, tmp_path: Path) -> None:
    series = {'modeldeploy_model_loaded{namespace="models",model="fraud",version="1"}': "1x20"}
    fired = _labels("critical", namespace="models")
    _run(make_md(), series, [("10m", "ModelDeploymentNoReadyPods", [fired])], tmp_path)
    # Scaled to zero on purpose: no pods is no alarm.
    idle = make_md(autoscaling={"minReplicas": 0, "maxReplicas": 3, "targetRequestsPerSecond": 5})
    _run(idle, series, [("10m", "ModelDeploymentNoReadyPods", [])], tmp_path)


def test_rolled_back(make_md: MakeMd, tmp_path: Path) -> None:
    def rolled_back(version: str, name: str = "iris") -> str:
        return f'modeldeploy_operator_rolled_back{{{NS},name="{name}",version="{version}"}}'

    series = {
        rolled_back("2"): "0 0 1 1 1 1",
        rolled_back("1"): "0x5",
        rolled_back("7", name="fraud"): "1x5",
    }
    fired = _labels("warning", namespace="models", name="iris", version="2")
    _run(
        make_md(),
        series,
        [
            ("1m", "ModelDeploymentRolledBack", []),
            ("2m", "ModelDeploymentRolledBack", [fired]),  # at once: no `for`
        ],
        tmp_path,
    )
