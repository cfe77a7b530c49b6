"""Session checks for the e2e suite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from modeldeploy_operator import drift_loop
from modeldeploy_operator.local_mlflow import MlflowServer

from tests.support.images import SERVER_IMAGE
from tests.support.kube import Kubectl, eventually
from tests.support.nodes import REAL_NODE_SELECTOR
from tests.support.operator_process import ROOT, OperatorProcess

CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
RETRAINING_CRDS = [
    ROOT / "crds" / "modeldeploy.dev_retrainingpolicies.yaml",
    ROOT / "crds" / "modeldeploy.dev_retrainingruns.yaml",
]


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


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


@pytest.fixture(scope="module")
def real_node(kube: Kubectl) -> str:
    """The real node, with this tree's server image loaded."""
    nodes = kube.list("nodes", _selector(REAL_NODE_SELECTOR))
    assert nodes, (
        "the cluster has no real node: cluster/up.sh starts one unless MODELDEPLOY_REAL_NODE=0"
    )
    [node] = nodes
    name = str(node["metadata"]["name"])

    def image_on_node() -> bool:
        status = kube.get("node", name) or {}
        names = {n for image in status["status"].get("images", []) for n in image["names"]}
        return SERVER_IMAGE in names

    eventually(
        image_on_node,
        timeout=60,
        what=f"{SERVER_IMAGE} on {name} (`make images` builds it; cluster/up.sh loads it)",
    )
    return name


@pytest.fixture(scope="module")
def cluster_dns(kube: Kubectl, real_node: str) -> None:
    """A DNS Service where the real node's kubelet points its pods (its clusterDNS)."""
    config = json.loads(kube.run("get", "--raw", f"/api/v1/nodes/{real_node}/proxy/configz"))
    dns = config["kubeletconfig"].get("clusterDNS", [])
    services = kube.in_namespace("kube-system").list("services")
    assert any(s["spec"].get("clusterIP") in dns for s in services), (
        f"no cluster DNS Service at {dns} in kube-system: the example's pods resolve its model "
        "store by name"
    )


@pytest.fixture
def retraining_crds(operator: OperatorProcess, kube: Kubectl) -> None:
    """This tree's RetrainingPolicy and RetrainingRun CRDs, established."""
    for crd in RETRAINING_CRDS:
        kube.run("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    for plural in ("retrainingpolicies", "retrainingruns"):
        kube.run("wait", "--for=condition=Established", f"crd/{plural}.modeldeploy.dev")


@pytest.fixture(scope="module")
def host_address(kube: Kubectl, real_node: str) -> str:
    """This host's address on the real node's network: where its pods reach the processes a
    test starts here (an MLflow server, a file server)."""
    node = kube.get("node", real_node)
    assert node is not None
    return drift_loop.host_address(node)


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory, host_address: str) -> Iterator[MlflowServer]:
    """A real `mlflow server` on the host's address, which the real node's pods (trainers,
    evaluators, servers) reach; a module may define its own instead."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), host=host_address)
    server.start()
    try:
        yield server
    finally:
        server.stop()
