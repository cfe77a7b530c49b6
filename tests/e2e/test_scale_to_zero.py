"""Scale to zero and back with a real KEDA (cluster/platform/keda.sh, built from its Go module): a
ModelDeployment with `minReplicas: 0` on the real node gets the ScaledObject the operator writes
(monitoring/keda.py) in place of its HorizontalPodAutoscaler. KEDA's metrics adapter serves the
external metrics API; KEDA's HPA reads it to scale the version from one pod to its maximum under
load; KEDA takes the idle version to zero pods; and requests through the Gateway wake it: Traefik
answers them 503 while no pod runs and counts them (traefik_router_requests_total, scraped by the
platform's Prometheus), which is the wake-up query the ModelDeployment's annotation gives KEDA.

KEDA is started for this module and stopped after it: with KEDA installed the operator writes
ScaledObjects, which a cluster without KEDA is tested against (test_monitoring.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
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
from tests.support.platform import (
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    STARTED_BY,
    TRAEFIK_SCRAPE_JOB,
    gateway_url,
    prometheus_api,
    prometheus_url,
    traefik_route_requests_query,
)

# Installs and removes KEDA's CRDs, which every operator on the cluster watches.
pytestmark = pytest.mark.serial

KEDA_SCRIPT: Final = ROOT / "cluster" / "platform" / "keda.sh"
EXTERNAL_METRICS: Final = "/apis/external.metrics.k8s.io/v1beta1"
NAME: Final = "idle"
# A fraction: KEDA reads the threshold as a JSON number, which a quantity like "2500m" is not.
TARGET_RPS: Final = 2.5
MAX_REPLICAS: Final = 3
# Twice what MAX_REPLICAS pods serve at the target: KEDA's HPA asks for the maximum.
LOAD_RPS: Final = 2 * MAX_REPLICAS * TARGET_RPS
LOAD_CONNECTIONS: Final = 3
# How long the version must be idle before KEDA takes it to zero (spec.autoscaling.
# scaleToZeroAfter): a new version serves as long, which must outlast the wait for Ready, the
# first test's load and KEDA seeing it (Prometheus' scrapes and rate window, KEDA's polling).
IDLE_SECONDS: Final = 180
# KEDA waits IDLE_SECONDS without activity before zero; then its next poll scales.
TO_ZERO_TIMEOUT: Final = IDLE_SECONDS + 4 * keda.POLLING_INTERVAL_SECONDS + 120
# Two scrapes of Traefik for a rate, a KEDA poll, then a pod that loads its model.
WAKE_TIMEOUT: Final = 240


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
        # KEDA's ScaledObject is watched by the operator's own watch, which outlives its CRD (as
        # test_monitoring's serial test shows for the Prometheus Operator's CRDs); the restart
        # stays until a run of this module shows the same for KEDA's removal.
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


def _hostname(k: Kubectl) -> str:
    return f"{NAME}.{k.namespace}.test"


def _model(k: Kubectl, prometheus: str) -> dict[str, Any]:
    namespace = str(k.namespace)
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": NAME,
            # The HTTPRoute the operator writes is named like the model.
            "annotations": {
                keda.ANNOTATION_WAKE_QUERY: traefik_route_requests_query(namespace, NAME)
            },
        },
        "spec": {
            "model": {"format": "sklearn", "version": STABLE, "storageUri": artifact_uri(STABLE)},
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": MAX_REPLICAS,
                "targetRequestsPerSecond": TARGET_RPS,
                "scaleToZeroAfter": f"{IDLE_SECONDS}s",
            },
            "server": {"resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}},
            # The Prometheus KEDA's trigger queries (KEDA runs on this machine: a cluster IP).
            # An analysis needs a check; there is no canary here to check.
            "rollout": {"analysis": {"prometheusUrl": prometheus, "successRate": {"min": 95}}},
            "traffic": {
                "router": "GatewayAPI",
                "gatewayRef": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
                "hostnames": [_hostname(k)],
            },
        },
    }


@pytest.fixture(scope="module")
def model(kube: Kubectl, site: Kubectl) -> str:
    """The ModelDeployment, Ready at one pod; its version's Deployment name."""
    site.apply(_model(site, prometheus_url(kube)))
    # A new version serves for a cooldown before KEDA may take it to zero.
    wait_ready(site, NAME, timeout=300)
    return naming.track_name(NAME, STABLE)


def _scaled_object_condition(k: Kubectl, name: str, kind: str) -> dict[str, Any]:
    scaled = k.get("scaledobjects.keda.sh", name) or {}
    for cond in scaled.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return {}


def _replicas(k: Kubectl, name: str) -> int:
    deployment = k.get("deployment", name) or {}
    return int(deployment.get("spec", {}).get("replicas", -1))


def _ready_replicas(k: Kubectl, name: str) -> int:
    deployment = k.get("deployment", name) or {}
    return int(deployment.get("status", {}).get("readyReplicas", 0))


def _pods(k: Kubectl, name: str) -> list[dict[str, Any]]:
    """The pods of Deployment `name`, terminating ones included (a terminating pod may still be
    answering the connections it has)."""
    deployment = k.get("deployment", name) or {}
    labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
    return k.list("pods", ",".join(f"{key}={value}" for key, value in labels.items()))


def _answers(url: str) -> bool:
    """Whether the model's Service answers: a Ready version's endpoint reaches kube-proxy's rules
    a moment after the pod is ready, and until then a connection is refused."""
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _external_metric(kube: Kubectl, namespace: str, hpa: dict[str, Any]) -> list[dict[str, Any]]:
    """What the external metrics API answers for the first metric of KEDA's HPA (its first
    trigger's: the version's own request rate)."""
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    selector = ",".join(f"{k}={v}" for k, v in metric["selector"]["matchLabels"].items())
    query = urllib.parse.urlencode({"labelSelector": selector})
    path = f"{EXTERNAL_METRICS}/namespaces/{namespace}/{metric['name']}?{query}"
    return list(json.loads(kube.run("get", "--raw", path))["items"])


def test_keda_serves_the_external_metrics_api(kube: Kubectl, with_keda: None) -> None:
    resources = json.loads(kube.run("get", "--raw", EXTERNAL_METRICS))
    assert resources["groupVersion"] == "external.metrics.k8s.io/v1beta1", resources


def test_keda_scales_a_version_from_one_pod_up_on_its_adapters_metrics(
    kube: Kubectl, site: Kubectl, model: str
) -> None:
    k, track = site, model
    eventually(
        lambda: _scaled_object_condition(k, track, "Ready").get("status") == "True",
        timeout=120,
        what=f"KEDA accepting the ScaledObject {track} (its Ready condition says why not)",
    )
    # KEDA scales through an HPA of its own; the operator's HPA of that name is gone.
    assert k.get("hpa", track) is None
    hpa = k.get("hpa", f"keda-hpa-{track}")
    assert hpa is not None
    assert _replicas(k, track) == 1

    # Requests through the model's Service, above what one pod should serve.
    service = k.get("service", NAME) or {}
    url = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    eventually(lambda: _answers(url), timeout=30, what=f"the Service of {track} answering")
    rate = LOAD_RPS / LOAD_CONNECTIONS
    started = time.monotonic()
    with Load(url, NAME, connections=LOAD_CONNECTIONS, rate=rate) as load:
        eventually(
            lambda: _scaled_object_condition(k, track, "Active").get("status") == "True",
            timeout=180,
            what=f"KEDA seeing {track}'s requests (Active)",
        )
        eventually(
            lambda: _ready_replicas(k, track) == MAX_REPLICAS,
            timeout=300,
            interval=2,
            what=f"KEDA's HPA scaling {track} to {MAX_REPLICAS} ready pods",
        )
        scaled_after = time.monotonic() - started
        # The HPA read its metric from the adapter, which answers the same query directly.
        hpa = k.get("hpa", f"keda-hpa-{track}") or {}
        current = [m for m in hpa.get("status", {}).get("currentMetrics", []) if "external" in m]
        served = _external_metric(kube, str(k.namespace), hpa)
    assert load.answers and not load.errors(), load.errors()
    assert current and current[0]["external"]["current"].get("averageValue") not in (None, "0")
    assert served and served[0]["value"] != "0", served
    print(
        f"KEDA 1 → {MAX_REPLICAS} ready pods under {LOAD_RPS:g} rps (target {TARGET_RPS:g} per "
        f"pod): {scaled_after:.1f}s; HPA metric {current[0]['external']}"
    )


def test_keda_scales_an_idle_version_to_zero(site: Kubectl, model: str) -> None:
    k, track = site, model
    eventually(
        lambda: _replicas(k, track) == 0 and _ready_replicas(k, track) == 0,
        timeout=TO_ZERO_TIMEOUT,
        interval=5,
        what=f"KEDA scaling the idle {track} to zero",
    )
    assert _scaled_object_condition(k, track, "Active").get("status") == "False"


def test_requests_through_the_gateway_wake_a_version_at_zero(
    kube: Kubectl, site: Kubectl, model: str
) -> None:
    k, track = site, model
    prometheus = prometheus_url(kube)
    up = prometheus_api(prometheus, "/api/v1/query?query=" + f'up{{job="{TRAEFIK_SCRAPE_JOB}"}}')
    assert [r["value"][1] for r in up["result"]] == ["1"], (
        f"the platform's Prometheus does not scrape Traefik (job {TRAEFIK_SCRAPE_JOB}); a "
        f"platform started before it did must be restarted ({STARTED_BY}): {up}"
    )
    # Zero pods: scaled to zero (the test before waited for it), and the last pod gone, not only
    # unready (while it terminates it may still answer through the Gateway).
    eventually(
        lambda: _replicas(k, track) == 0 and not _pods(k, track),
        timeout=TO_ZERO_TIMEOUT,
        interval=5,
        what=f"KEDA scaling the idle {track} to zero and its last pod gone",
    )

    # A client retrying through the Gateway: Traefik answers 503 until a pod serves.
    started = time.monotonic()
    with Load(gateway_url(kube), NAME, host=_hostname(k), connections=1, rate=2.0) as load:
        eventually(
            lambda: any(a.ok for a in load.answers),
            timeout=WAKE_TIMEOUT,
            interval=0.2,
            what=f"a 200 through the Gateway from {track} woken from zero",
        )
    first = next(a for a in load.answers if a.ok)
    before = Counter(a.status for a in load.answers if a.at < first.at)
    assert set(before) == {503}, load.errors()
    assert _replicas(k, track) >= 1
    print(
        f"KEDA 0 → 1 on requests through the Gateway: first 200 after "
        f"{first.at - started:.1f}s ({before[503]} answers 503 before it, at 2 rps)"
    )
