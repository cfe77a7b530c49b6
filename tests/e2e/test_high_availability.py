"""Two operator replicas with kopf peering: only the leading one reconciles; when it stops, the
standby takes over within the peering lifetime."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube import Kubectl, eventually
from tests.support.models import model, wait_ready
from tests.support.operator_process import ROOT, OperatorProcess

PEERING_CRDS = ROOT / "charts" / "modeldeploy" / "crds" / "kopf.dev_peerings.yaml"


def reconciles(op: OperatorProcess) -> float:
    for line in op.metrics().splitlines():
        if line.startswith('modeldeploy_operator_reconciles_total{result="ok"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def ha_namespace(kube: Kubectl) -> Iterator[Kubectl]:
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    kube.run("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    # Outside `t-*`: only this test's two replicas act here.
    name = f"ha-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield kube.in_namespace(name)
    kube.delete("namespace", name)


def test_only_the_leader_reconciles_and_the_standby_takes_over(
    ha_namespace: Kubectl, tmp_path: Path
) -> None:
    k = ha_namespace
    k.create({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "md"}})

    def replica(name: str, priority: int) -> OperatorProcess:
        args = ("--peering", "md", "--peering-priority", str(priority), "--peering-lifetime", "6")
        return OperatorProcess(
            k.kubeconfig, tmp_path / f"{name}.log", *args, namespaces=str(k.namespace)
        )

    standby, leader = replica("standby", 10), replica("leader", 20)
    standby.start()
    leader.start()
    try:
        k.apply(model("ha"))
        wait_ready(k, "ha")
        assert reconciles(leader) > 0
        assert reconciles(standby) == 0

        leader.stop()
        k.apply(model("ha", replicas=3))  # a change only the standby is left to make

        def scaled() -> bool:
            dep = k.get("deployment", "ha-v1")
            return bool(dep and dep["spec"]["replicas"] == 3)

        eventually(scaled, timeout=40, what="the standby took over")
        assert reconciles(standby) > 0
    finally:
        leader.stop()
        standby.stop()
