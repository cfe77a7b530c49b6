"""Session checks for the e2e suite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.kube import Kubectl
from tests.support.operator_process import ROOT, OperatorProcess

CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"


def _node_ready_since(kube: Kubectl) -> dict[str, datetime | None]:
    nodes = json.loads(kube.run("get", "nodes", "-o", "json"))["items"]
    since: dict[str, datetime | None] = {}
    for node in nodes:
        ready = next(
            (c for c in node["status"].get("conditions", []) if c["type"] == "Ready"), None
        )
        ok = ready is not None and ready["status"] == "True"
        since[node["metadata"]["name"]] = (
            datetime.fromisoformat(ready["lastTransitionTime"].replace("Z", "+00:00"))
            if ok
            else None
        )
    return since


@pytest.fixture(scope="session", autouse=True)
def nodes_ready_for_the_whole_run(kube: Kubectl) -> Iterator[None]:
    """Every node is Ready when the suite starts and has not left Ready when it ends."""
    before = _node_ready_since(kube)
    assert len(before) >= 3 and all(before.values()), f"nodes not Ready at start: {before}"
    started = datetime.now(UTC)
    yield
    after = _node_ready_since(kube)
    flapped = {n: t for n, t in after.items() if t is None or t > started or t != before.get(n)}
    assert not flapped, f"nodes left Ready during the run: {flapped}"


@pytest.fixture(scope="session")
def operator(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.dev")
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(kube.kubeconfig, log)
    proc.start()
    yield proc
    proc.stop()
    print(f"operator log: {log}")
