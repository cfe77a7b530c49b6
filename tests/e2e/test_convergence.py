"""Many ModelDeployments applied at once all become Ready: the operator's view of its children
must follow their status even when watch events race the answers to its own writes."""

from __future__ import annotations

import pytest

from tests.support.kube import Kubectl, eventually
from tests.support.models import model
from tests.support.operator_process import OperatorProcess

MODELS = 60

# Sixty PrometheusRules outgrow the Prometheus Operator's first rule ConfigMap: it adds a second
# and restarts the shared Prometheus, which every other test's analysis reads (seen in a
# three-worker run: the pod was replaced twice within 20 s of the apply).
pytestmark = pytest.mark.serial


def test_sixty_models_applied_at_once_all_become_ready(
    operator: OperatorProcess, k: Kubectl
) -> None:
    names = [f"m{i:03d}" for i in range(MODELS)]
    k.apply(*(model(name, replicas=1) for name in names), server_side=True)

    stuck: list[str] = []

    def all_ready() -> bool:
        phases = {md["metadata"]["name"]: md.get("status", {}).get("phase") for md in k.list("md")}
        stuck[:] = [f"{n}: {phases.get(n)}" for n in names if phases.get(n) != "Ready"]
        return not stuck

    # Every Deployment becomes ready within seconds on this cluster; the models must follow.
    eventually(lambda: all_deployments_ready(k, MODELS), timeout=300, what="deployments ready")
    try:
        eventually(all_ready, timeout=120, what="every model Ready")
    except AssertionError as err:
        raise AssertionError(f"{len(stuck)} models not Ready: {stuck[:10]}") from err


def all_deployments_ready(k: Kubectl, n: int) -> bool:
    deployments = k.list("deployments")
    ready = [d for d in deployments if d.get("status", {}).get("readyReplicas", 0) >= 1]
    return len(ready) == n
