"""Two operator replicas with kopf peering: only the leading one reconciles; when it stops, the
standby takes over within the peering lifetime.

Every wait is on what a replica says of itself (`modeldeploy_operator_leading`, its reconcile
counter) or on the cluster, never on elapsed time: a replica started second still has to see the
first one's keep-alive before the first one stands by, which takes longer on a busy machine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit import AuditLog
from tests.support.kube import Kubectl, eventually
from tests.support.models import model, wait_ready
from tests.support.operator_process import ROOT, OperatorProcess

PEERING_CRDS = ROOT / "charts" / "modeldeploy" / "crds" / "kopf.dev_peerings.yaml"
PEERING = "md"
# Seconds a replica's keep-alive counts: short, so a stopped leader is replaced soon.
PEERING_LIFETIME = "6"


def sample(op: OperatorProcess, series: str) -> float:
    """The value of one series on the replica's /metrics (0 when absent)."""
    for line in op.metrics().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def reconciles(op: OperatorProcess) -> float:
    return sample(op, 'modeldeploy_operator_reconciles_total{result="ok"}')


def leading(op: OperatorProcess) -> bool:
    return sample(op, "modeldeploy_operator_leading") == 1


def status(k: Kubectl, name: str) -> dict[str, Any]:
    md = k.get("md", name)
    return dict(md.get("status", {})) if md else {}


def models_in_view(op: OperatorProcess) -> float:
    return sample(op, 'modeldeploy_operator_managed_objects{kind="ModelDeployment"}')


@pytest.fixture
def ha_namespace(kube: Kubectl) -> Iterator[Kubectl]:
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    kube.run("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    # Outside `t-*`: only this test's two replicas act here.
    name = f"ha-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    k = kube.in_namespace(name)
    k.create({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}})
    yield k
    kube.delete("namespace", name)


def replica(k: Kubectl, tmp_path: Path, name: str, priority: int) -> OperatorProcess:
    args = (
        "--peering", PEERING, "--peering-priority", str(priority),
        "--peering-lifetime", PEERING_LIFETIME,
    )  # fmt: skip
    return OperatorProcess(
        k.kubeconfig, tmp_path / f"{name}.log", *args, namespaces=str(k.namespace)
    )


def wait_until_leads(leader: OperatorProcess, standby: OperatorProcess) -> None:
    eventually(
        lambda: leading(leader) and not leading(standby),
        timeout=60,
        what=f"{leader.log_path.stem} leading and {standby.log_path.stem} standing by",
    )


def test_only_the_leader_reconciles_and_the_standby_takes_over(
    ha_namespace: Kubectl, tmp_path: Path
) -> None:
    k = ha_namespace
    standby, leader = replica(k, tmp_path, "standby", 10), replica(k, tmp_path, "leader", 20)
    standby.start()
    leader.start()
    try:
        # Alone at first, the standby led until it saw the leader's keep-alive.
        wait_until_leads(leader, standby)
        k.apply(model("ha"))
        wait_ready(k, "ha")
        # The Ready status is written before the pass that wrote it is counted.
        eventually(lambda: reconciles(leader) > 0, timeout=30, what="the leader's passes counted")
        assert reconciles(standby) == 0

        leader.stop()
        k.apply(model("ha", replicas=3))  # a change only the standby is left to make

        def scaled() -> bool:
            dep = k.get("deployment", "ha-v1")
            return bool(dep and dep["spec"]["replicas"] == 3)

        eventually(scaled, timeout=40, what="the standby took over")
        assert leading(standby)
        eventually(lambda: reconciles(standby) > 0, timeout=30, what="the standby's passes counted")
    finally:
        leader.stop()
        standby.stop()


def test_a_model_deleted_while_the_leader_is_stopped_is_never_written_for_by_the_new_leader(
    ha_namespace: Kubectl, tmp_path: Path
) -> None:
    """A standby's kopf watches are paused: a deletion while it stands by never reaches its view.
    `ghost`, mid-rollout in the standby's view, is deleted while the leader is frozen; the
    standby takes over and must neither keep it nor write for it, even once its step is due.
    `witness` rolls out the same way, started later: its promotion by the new leader means
    the ghost's step was due too."""
    k = ha_namespace
    audit = AuditLog.beside(k.kubeconfig)
    assert audit.available, f"no audit log at {audit.path}: the cluster of cluster/up.sh has one"
    rollout = {"steps": [50], "stepInterval": "45s"}
    standby, leader = replica(k, tmp_path, "standby", 10), replica(k, tmp_path, "leader", 20)
    standby.start()
    try:
        # Alone, the standby leads: both models are in its view, mid-rollout, when it pauses.
        eventually(lambda: leading(standby), timeout=60, what="the first replica leading")
        for name in ("ghost", "witness"):
            k.apply(model(name, "1", rollout=rollout))
        for name in ("ghost", "witness"):
            wait_ready(k, name)
        # One after the other: the witness's step begins after the ghost's, so it ends later.
        for name in ("ghost", "witness"):
            k.apply(model(name, "2", rollout=rollout))
            eventually(
                lambda name=name: status(k, name).get("canaryWeight") == 50,
                timeout=60,
                what=f"{name} at its canary step",
            )
        leader.start()
        wait_until_leads(leader, standby)

        leader.freeze()  # its keep-alive ages out; it sees and writes nothing more
        mark = audit.mark()
        k.delete("md", "ghost", wait=True)
        eventually(lambda: leading(standby), timeout=60, what="the standby taking over")

        eventually(
            lambda: status(k, "witness").get("stableVersion") == "2",
            timeout=120,
            what="the new leader promoting witness",
        )
        ghost_writes = [w for w in audit.writes_since(mark, str(k.namespace)) if "ghost" in w.name]
        assert ghost_writes == []
        assert models_in_view(standby) == 1
    finally:
        leader.kill()
        standby.stop()
