"""Monitoring objects on the real control plane, with and without the Prometheus Operator CRDs,
and scale-to-zero without KEDA."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube import Kubectl, eventually
from tests.support.models import condition, model, wait_ready
from tests.support.operator_process import ROOT, OperatorProcess

MONITORING_CRDS = (
    "podmonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
)


def monitoring_status(k: Kubectl, name: str) -> str:
    md = k.get("md", name)
    return str((md or {}).get("status", {}).get("monitoring", ""))


def test_pod_monitor_and_rules_follow_the_spec(operator: OperatorProcess, k: Kubectl) -> None:
    k.apply(model("watched"))
    md = wait_ready(k, "watched")
    eventually(lambda: k.get("podmonitor", "watched"), what="PodMonitor")
    rule = eventually(lambda: k.get("prometheusrule", "watched"), what="PrometheusRule")
    assert rule["metadata"]["ownerReferences"][0]["uid"] == md["metadata"]["uid"]
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert len(alerts) >= 5, alerts
    eventually(lambda: "PodMonitor" in monitoring_status(k, "watched"), what="status.monitoring")

    k.apply(model("watched", monitoring={"serviceMonitor": "Disabled", "rules": "Disabled"}))
    eventually(lambda: k.get("podmonitor", "watched") is None, what="PodMonitor removed")
    eventually(lambda: k.get("prometheusrule", "watched") is None, what="rules removed")
    eventually(lambda: monitoring_status(k, "watched") == "disabled", what="status disabled")


def test_scale_to_zero_without_keda_says_why(operator: OperatorProcess, k: Kubectl) -> None:
    autoscaling = {"minReplicas": 0, "maxReplicas": 3, "targetRequestsPerSecond": 20}
    k.apply(model("sleepy", autoscaling=autoscaling))
    md = wait_ready(k, "sleepy")
    cond = condition(md, "ScaleToZero")
    assert cond["status"] == "False" and cond["reason"] == "ScaleToZeroUnavailable"
    hpa = k.get("hpa", "sleepy-v1")
    assert hpa is not None and hpa["spec"]["minReplicas"] == 1


def remove_monitoring_crds(kube: Kubectl) -> None:
    """Deletes the Prometheus Operator's CRDs and waits until discovery no longer lists them."""
    kube.run("delete", "crd", *MONITORING_CRDS, "--ignore-not-found", "--wait=true")

    def undiscoverable() -> bool:
        # The group itself may stay: the Prometheus Operator's own kinds (Prometheus, ...)
        # remain installed on a cluster that runs it.
        found = kube.run("get", "--raw", "/apis/monitoring.coreos.com/v1", check=False)
        return not any(f'"name":"{crd.split(".")[0]}"' in found for crd in MONITORING_CRDS)

    eventually(undiscoverable, timeout=30, what="the monitoring kinds gone from discovery")


def restore_monitoring_crds(kube: Kubectl) -> None:
    """Installs the CRDs again (as the platform has them) and waits until they are served."""
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    subprocess.run([str(ROOT / "cluster" / "platform-crds.sh"), "apply"], check=True, env=env)

    def served() -> bool:
        found = kube.run("get", "--raw", "/apis/monitoring.coreos.com/v1", check=False)
        return all(f'"name":"{plural}"' in found for plural in ("podmonitors", "prometheusrules"))

    eventually(served, timeout=30, what="PodMonitor and PrometheusRule served")


@pytest.fixture
def without_monitoring_crds(kube: Kubectl, operator: OperatorProcess) -> Iterator[None]:
    """Removes the CRDs for the test and installs them again after it. The session's operator
    lives through both (test_the_operator_outlives_the_monitoring_crds_removed_and_restored)."""
    remove_monitoring_crds(kube)
    try:
        yield
    finally:
        restore_monitoring_crds(kube)


@pytest.mark.serial  # the Prometheus Operator's CRDs go for the whole cluster
def test_the_operator_outlives_the_monitoring_crds_removed_and_restored(
    kube: Kubectl, operator: OperatorProcess, k: Kubectl
) -> None:
    """The CRDs of an optional kind deleted while the operator runs, then installed again (the
    Prometheus Operator uninstalled and reinstalled): the operator lives on with /healthz ok,
    reconciles a change made meanwhile, says on the model that the kinds are missing, and once
    they are back, watches them again and re-creates the children."""
    k.apply(model("kept"))
    wait_ready(k, "kept")
    eventually(lambda: k.get("podmonitor", "kept"), what="PodMonitor")
    eventually(lambda: k.get("prometheusrule", "kept"), what="PrometheusRule")
    restored = False
    remove_monitoring_crds(kube)
    try:
        # Long enough for the watches of the removed kinds to meet 404 and for an operator that
        # ends on it to have ended (it did after about 5 s of /healthz 503).
        time.sleep(10)
        assert operator.running, "the operator exited when the CRDs were removed"
        assert operator.probe("/healthz")
        k.apply(model("kept", replicas=3))

        def scaled() -> bool:
            deployment = k.get("deployment", "kept-v1")
            return deployment is not None and deployment["spec"].get("replicas") == 3

        eventually(scaled, timeout=60, what="a change made without the CRDs reconciled")
        eventually(
            lambda: monitoring_status(k, "kept").startswith("unavailable"),
            timeout=60,
            what="status.monitoring says the CRDs are missing",
        )
        assert operator.running and operator.probe("/healthz")

        restore_monitoring_crds(kube)
        restored = True
        served = time.monotonic()
        eventually(lambda: k.get("podmonitor", "kept"), timeout=120, what="PodMonitor re-created")
        eventually(
            lambda: k.get("prometheusrule", "kept"), timeout=120, what="PrometheusRule re-created"
        )
        recovered = time.monotonic() - served
        print(f"children re-created {recovered:.1f} s after the CRDs were served again")
        eventually(
            lambda: "PodMonitor" in monitoring_status(k, "kept"),
            timeout=60,
            what="status.monitoring says the PodMonitor is created",
        )
        # The kinds are watched again: a PodMonitor deleted by hand comes back.
        k.run("delete", "podmonitor", "kept", "--wait=true")
        eventually(lambda: k.get("podmonitor", "kept"), timeout=60, what="PodMonitor re-made")
        assert operator.running and operator.probe("/healthz")
    finally:
        if not restored:
            restore_monitoring_crds(kube)
        if not operator.running or not operator.probe("/healthz"):
            operator.restart()  # for the tests after this one; the assertions said why


@pytest.mark.serial  # the Prometheus Operator's CRDs go for the whole cluster
def test_without_the_crds_models_serve_and_status_says_so(
    kube: Kubectl, without_monitoring_crds: None, tmp_path: Path
) -> None:
    # Outside `t-*`, so only this test's operator (started without the CRDs) acts here.
    namespace = f"x-nocrds-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    k = kube.in_namespace(namespace)
    fresh = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log", namespaces=namespace)
    fresh.start()
    try:
        k.apply(model("plain"))
        k.apply(model("insists", monitoring={"serviceMonitor": "Enabled", "rules": "Auto"}))
        wait_ready(k, "plain")
        assert monitoring_status(k, "plain").startswith("unavailable")

        def degraded() -> dict[str, Any] | None:
            md = k.get("md", "insists")
            reason = condition(md, "Degraded").get("reason")
            return md if reason == "MonitoringUnavailable" else None

        md = eventually(degraded, what="Enabled without CRD reported")
        assert "monitoring.coreos.com" in condition(md, "Degraded")["message"]

        # It still serves: Ready once its pods are (the Degraded condition can come first; a
        # clean-clone run saw Ready False here while the pods started), and still Degraded.
        def serving() -> dict[str, Any] | None:
            md = degraded()
            return md if md is not None and condition(md, "Ready")["status"] == "True" else None

        eventually(serving, what="insists Ready while Degraded")
    finally:
        fresh.stop()
        kube.delete("namespace", namespace)
