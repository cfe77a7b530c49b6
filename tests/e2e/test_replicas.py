"""Replica counts a user can rely on: an autoscaled model is Ready only at its minimum, and
switching a running model to autoscaling never shrinks it before the autoscaler decides."""

from __future__ import annotations

from tests.support.kube import Kubectl, eventually
from tests.support.models import model, wait_ready
from tests.support.operator_process import OperatorProcess

AUTOSCALING = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70}
PHASE_READY = '{.status.phase} {.status.conditions[?(@.type=="Ready")].message}'


def test_an_autoscaled_model_becomes_ready_at_its_minimum_without_flapping(
    operator: OperatorProcess, k: Kubectl
) -> None:
    with k.watch("md", "scaled", PHASE_READY) as watch:
        k.apply(model("scaled", autoscaling=AUTOSCALING))
        wait_ready(k, "scaled")
        # The autoscaler has looked at the Deployment (and found nothing to change).
        eventually(
            lambda: (k.get("hpa", "scaled-v1") or {}).get("status", {}).get("currentReplicas"),
            what="the HPA observed the Deployment",
        )
        deployment = k.get("deployment", "scaled-v1")
        assert deployment is not None and deployment["spec"]["replicas"] == 2
        wait_ready(k, "scaled")
        watch.wait_caught_up()
    states = watch.states
    phases = [state.split(" ", 1)[0] for state in states]
    first_ready = phases.index("Ready")
    assert all(p == "Ready" for p in phases[first_ready:]), states
    assert states[first_ready].endswith("2/2 replicas of version 1 ready"), states


def test_switching_a_running_model_to_autoscaling_keeps_its_replicas(
    operator: OperatorProcess, k: Kubectl
) -> None:
    k.apply(model("grown", replicas=4))
    wait_ready(k, "grown")
    with k.watch("deployment", "grown-v1", "{.spec.replicas}") as watch:
        k.apply(model("grown", autoscaling=AUTOSCALING))
        eventually(lambda: k.get("hpa", "grown-v1"), what="the HPA")
        md = wait_ready(k, "grown")
        eventually(
            lambda: (k.get("hpa", "grown-v1") or {}).get("status", {}).get("currentReplicas"),
            what="the HPA observed the Deployment",
        )
        assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
        watch.wait_caught_up()
    assert watch.states and all(size == "4" for size in watch.states), watch.states
    deployment = k.get("deployment", "grown-v1")
    assert deployment is not None and deployment["spec"]["replicas"] == 4
