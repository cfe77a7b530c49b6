"""The whole loop: the operator rolls out a canary on the real control plane while its analysis
queries a real Prometheus scraping real `modeldeploy serve` processes for each version, under
load. A healthy canary is promoted through every step; a canary whose model fails every
prediction, and one that refuses every prediction stable serves (4xx, no 5xx), are rolled back
after maxFailedChecks, with the measured success rate in the status. Prometheus stopped in the
middle of a step holds the step, counting nothing, until it is back."""

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
        serving.start(
            {
                "1": Served.HEALTHY,
                "2": Served.HEALTHY,
                "3": Served.FAILING,
                "4": Served.FIVE_FEATURES,  # answers 400, never 5xx
            }
        )
        yield serving
    finally:
        serving.stop()


def rollout(prometheus: str, no_data: str = "Fail") -> dict[str, Any]:
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
            "noData": no_data,
        },
    }


def status(k: Kubectl) -> dict[str, Any]:
    md = k.get("md", NAME)
    return dict((md or {}).get("status", {}))


def events(k: Kubectl) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={NAME}"
    return list(
        json.loads(k.run("get", "events", "--field-selector", selector, "-o", "json"))["items"]
    )


def unanswered(operator: OperatorProcess) -> float:
    """How many analyses the operator has seen Prometheus leave unanswered."""
    for line in operator.metrics().splitlines():
        if line.startswith("modeldeploy_operator_analysis_unanswered_total "):
            return float(line.split()[1])
    raise AssertionError("the operator exports no modeldeploy_operator_analysis_unanswered_total")


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
    rolled_back = [e["message"] for e in events(k) if e["reason"] == "RolledBack"]
    assert rolled_back and "2 failed checks" in rolled_back[0]


def test_a_canary_refusing_what_stable_serves_is_rolled_back_with_the_measured_values(
    operator: OperatorProcess, k: Kubectl, stack: ServingStack
) -> None:
    spec = rollout(stack.prometheus)
    with stack.traffic() as codes:
        k.apply(model(NAME, "1", rollout=spec))
        wait_ready(k, NAME)
        k.apply(model(NAME, "4", rollout=spec))
        eventually(lambda: status(k).get("phase") == "Failed", timeout=90, what="rollback")
    # Retrained on five features, version 4 refuses today's four-feature rows: 400, never 5xx.
    assert set(codes["4"]) - {0} == {400}
    st = status(k)
    assert st["stableVersion"] == "1" and st.get("canaryVersion") is None
    assert condition(k.get("md", NAME), "Progressing")["reason"] == "AnalysisFailed"
    assert st["lastAnalysis"]["successRate"] == 0
    checks = {c["name"]: c for c in st["lastAnalysis"]["checks"]}
    assert checks["successRate"]["passed"] is False and checks["successRate"]["value"] == 0


def test_a_prometheus_outage_holds_the_step_until_prometheus_is_back(
    operator: OperatorProcess, k: Kubectl, stack: ServingStack
) -> None:
    # A restarted Prometheus has no rate over the window until it has scraped twice inside it:
    # noData Hold waits for that rather than counting a failed check.
    spec = rollout(stack.prometheus, no_data="Hold")
    with stack.traffic():
        k.apply(model(NAME, "1", rollout=spec))
        wait_ready(k, NAME)
        k.apply(model(NAME, "2", rollout=spec))
        eventually(lambda: status(k).get("canaryWeight"), timeout=60, what="the first step")
        stack.stop_prometheus()

        def held() -> dict[str, Any] | None:
            st = status(k)
            assert st.get("phase") == "Progressing" and not st.get("failedChecks"), st
            progressing = condition(k.get("md", NAME), "Progressing")
            return st if progressing.get("reason") == "AnalysisUnavailable" else None

        at_hold = eventually(held, timeout=60, interval=0.3, what="the step held")
        message = condition(k.get("md", NAME), "Progressing")["message"]
        assert f"cannot reach Prometheus at {stack.prometheus}" in message, message
        # The operator keeps asking, each time without a verdict: the step stays where it is.
        asked = unanswered(operator)

        def asked_twice_more() -> bool:
            st = held()
            assert st is not None and st["canaryWeight"] == at_hold["canaryWeight"], st
            assert st["currentStep"] == at_hold["currentStep"], st
            return unanswered(operator) >= asked + 2

        eventually(asked_twice_more, timeout=60, interval=0.3, what="two more unanswered tries")
        warnings = [
            e for e in events(k) if e["reason"] == "AnalysisUnavailable" and e["type"] == "Warning"
        ]
        assert len(warnings) == 1, warnings  # once, not once per try
        assert f"cannot reach Prometheus at {stack.prometheus}" in warnings[0]["message"]

        stack.start_prometheus()

        def promoted() -> bool:
            st = status(k)
            assert st.get("phase") != "Failed", st
            return st.get("stableVersion") == "2" and st.get("phase") == "Ready"

        eventually(promoted, timeout=90, interval=0.3, what="promotion after the outage")
    assert status(k)["lastAnalysis"]["passed"] is True
    assert not [e for e in events(k) if e["reason"] in ("AnalysisFailed", "RolledBack")]
