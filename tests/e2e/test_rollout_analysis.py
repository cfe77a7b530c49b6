"""The whole loop: the operator rolls out a canary on the real control plane while its analysis
queries a real Prometheus scraping real `modeldeploy serve` processes for each version, under
load. A healthy canary is promoted through every step; a canary whose model fails every
prediction is rolled back after maxFailedChecks, with the measured success rate in the status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube import Kubectl, eventually
from tests.support.models import condition, model, wait_ready
from tests.support.operator_process import OperatorProcess
from tests.support.serving_stack import PROMETHEUS, Served, ServingStack

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(PROMETHEUS is None, reason="needs the Debian package `prometheus`"),
]
NAME = "analysed"


@pytest.fixture
def stack(k: Kubectl, tmp_path: Path) -> Iterator[ServingStack]:
    serving = ServingStack(namespace=str(k.namespace), model=NAME, workdir=tmp_path)
    try:
        serving.start({"1": Served.HEALTHY, "2": Served.HEALTHY, "3": Served.FAILING})
        yield serving
    finally:
        serving.stop()


def rollout(prometheus: str) -> dict[str, Any]:
    return {
        "steps": [30, 60],
        "stepInterval": "4s",
        "progressDeadline": "2m",
        "analysis": {
            "prometheusUrl": prometheus,
            "interval": "8s",
            "successRate": {"min": 95},
            "latencyP99Ms": {"max": 1000},
            "maxFailedChecks": 2,
            "noData": "Fail",
        },
    }


def status(k: Kubectl) -> dict[str, Any]:
    md = k.get("md", NAME)
    return dict((md or {}).get("status", {}))


def test_a_healthy_canary_is_promoted_through_every_step(
    operator: OperatorProcess, k: Kubectl, stack: ServingStack
) -> None:
    spec = rollout(stack.prometheus)
    with stack.traffic() as codes:
        k.apply(model(NAME, "1", rollout=spec))
        wait_ready(k, NAME)
        k.apply(model(NAME, "2", rollout=spec))
        weights: list[int] = []

        def promoted() -> bool:
            st = status(k)
            if st.get("canaryWeight") and (not weights or weights[-1] != st["canaryWeight"]):
                weights.append(st["canaryWeight"])
            return st.get("stableVersion") == "2" and st.get("phase") == "Ready"

        eventually(promoted, timeout=90, interval=0.3, what="promotion of version 2")
    assert weights == [30, 60], weights
    analysis = status(k)["lastAnalysis"]
    assert analysis["passed"] is True
    checks = {c["name"]: c for c in analysis["checks"]}
    assert checks["successRate"]["value"] >= 99  # measured, from real 200s
    assert all(code == 200 for code in codes["2"] if code)


def test_a_failing_canary_is_rolled_back_with_the_measured_values(
    operator: OperatorProcess, k: Kubectl, stack: ServingStack
) -> None:
    spec = rollout(stack.prometheus)
    with stack.traffic() as codes:
        k.apply(model(NAME, "1", rollout=spec))
        wait_ready(k, NAME)
        k.apply(model(NAME, "3", rollout=spec))
        eventually(lambda: status(k).get("phase") == "Failed", timeout=90, what="rollback")
    assert 500 in codes["3"]  # the canary really failed under load
    st = status(k)
    assert st["stableVersion"] == "1" and st.get("canaryVersion") is None
    progressing = condition(k.get("md", NAME), "Progressing")
    assert progressing["reason"] == "AnalysisFailed"
    checks = {c["name"]: c for c in st["lastAnalysis"]["checks"]}
    assert checks["successRate"]["passed"] is False
    assert checks["successRate"]["value"] < 50
    eventually(lambda: k.get("deployment", f"{NAME}-v3") is None, what="canary removed")
    events = json.loads(
        k.run("get", "events", "--field-selector", f"involvedObject.name={NAME}", "-o", "json")
    )["items"]
    rolled_back = [e["message"] for e in events if e["reason"] == "RolledBack"]
    assert rolled_back and "2 failed checks" in rolled_back[0]
