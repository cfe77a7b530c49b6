"""Scale to zero with a real KEDA (cluster/platform/keda.sh, built from its Go module): a
ModelDeployment with `minReplicas: 0` on the real node gets the ScaledObject the operator writes
(monitoring/keda.py) in place of its HorizontalPodAutoscaler, KEDA accepts it and reads its
Prometheus trigger, keeps the version up while it serves requests, and takes it to zero pods when
it is idle.

KEDA is started for this module and stopped after it: with KEDA installed the operator writes
ScaledObjects, which a cluster without KEDA is tested against (test_monitoring.py).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any, Final

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.monitoring import keda

from tests.support.kube import TEST_PREFIX, Kubectl, eventually
from tests.support.load import Load
from tests.support.model_store import STABLE, STORE, artifact_uri, store_objects
from tests.support.models import wait_ready
from tests.support.operator_process import ROOT, OperatorProcess
from tests.support.platform import prometheus_url

# Installs and removes KEDA's CRDs, which every operator on the cluster watches.
pytestmark = pytest.mark.serial

KEDA_SCRIPT: Final = ROOT / "cluster" / "platform" / "keda.sh"
NAME: Final = "idle"
# A fraction: KEDA reads the threshold as a JSON number, which a quantity like "2500m" is not.
TARGET_RPS: Final = 2.5
# KEDA waits this long without activity before zero; then its next poll scales.
TO_ZERO_TIMEOUT: Final = keda.COOLDOWN_SECONDS + 4 * keda.POLLING_INTERVAL_SECONDS + 120


def _keda(kube: Kubectl, action: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    subprocess.run([str(KEDA_SCRIPT), action], check=True, env=env)


@pytest.fixture(scope="module")
def with_keda(kube: Kubectl, operator: OperatorProcess) -> Iterator[None]:
    _keda(kube, "up")
    try:
        yield
    finally:
        _keda(kube, "down")
        # A removed CRD the operator watches ends kopf's watchers (docs/operator.md: crash-only,
        # Kubernetes restarts it): the session's operator is restarted for the tests after this.
        operator.restart()


@pytest.fixture(scope="module")
def site(
    kube: Kubectl, with_keda: None, operator: OperatorProcess, real_node: str, cluster_dns: None
) -> Iterator[Kubectl]:
    namespace = f"{TEST_PREFIX}-scale-to-zero-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    k = kube.in_namespace(namespace)
    try:
        k.apply(*store_objects())
        k.run("rollout", "status", f"deployment/{STORE}", "--timeout=180s")
        yield k
    finally:
        kube.delete("namespace", namespace)


def _model(prometheus: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": {"format": "sklearn", "version": STABLE, "storageUri": artifact_uri(STABLE)},
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 2,
                "targetRequestsPerSecond": TARGET_RPS,
            },
            "server": {"resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}},
            # The Prometheus KEDA's trigger queries (KEDA runs on this machine: a cluster IP).
            # An analysis needs a check; there is no canary here to check.
            "rollout": {"analysis": {"prometheusUrl": prometheus, "successRate": {"min": 95}}},
        },
    }


def _scaled_object_condition(k: Kubectl, name: str, kind: str) -> dict[str, Any]:
    scaled = k.get("scaledobjects.keda.sh", name) or {}
    for cond in scaled.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return {}


def _replicas(k: Kubectl, name: str) -> int:
    deployment = k.get("deployment", name) or {}
    return int(deployment.get("spec", {}).get("replicas", -1))


def test_keda_scales_an_idle_version_to_zero(kube: Kubectl, site: Kubectl) -> None:
    k = site
    k.apply(_model(prometheus_url(kube)))
    track = naming.track_name(NAME, STABLE)
    # A new version serves for a cooldown before KEDA may take it to zero.
    wait_ready(k, NAME, timeout=300)

    eventually(
        lambda: _scaled_object_condition(k, track, "Ready").get("status") == "True",
        timeout=120,
        what=f"KEDA accepting the ScaledObject {track} (its Ready condition says why not)",
    )
    # KEDA scales through an HPA of its own; the operator's HPA of that name is gone.
    assert k.get("hpa", track) is None
    assert k.get("hpa", f"keda-hpa-{track}") is not None

    # Requests through the model's Service make its trigger active (its request rate is above 0).
    service = k.get("service", NAME) or {}
    url = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    with Load(url, NAME, connections=1, rate=5.0) as load:
        eventually(
            lambda: _scaled_object_condition(k, track, "Active").get("status") == "True",
            timeout=180,
            what=f"KEDA seeing {track}'s requests (Active)",
        )
    assert load.answers and not load.errors(), load.errors()

    # Idle: KEDA takes the version to zero pods once its cooldown has passed.
    eventually(
        lambda: _replicas(k, track) == 0,
        timeout=TO_ZERO_TIMEOUT,
        interval=5,
        what=f"KEDA scaling the idle {track} to zero",
    )
    assert _scaled_object_condition(k, track, "Active").get("status") == "False"
