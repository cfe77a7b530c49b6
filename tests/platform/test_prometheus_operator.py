"""The real Prometheus Operator consumes the monitoring objects the modeldeploy operator writes:
its PodMonitor becomes scrape targets of the cluster's Prometheus (monitoring/modeldeploy) that
are up, and its PrometheusRule's alerts are loaded there.

The objects are the ones the reconciler applies (`desired_monitoring`, its one entry point),
for real pods on the real node: echo pods (tests/support/echo) with the serving pods' labels and
port name, which answer /metrics.
"""

from __future__ import annotations

from typing import Any

from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.monitoring import desired_monitoring

from tests.support.kube import Kubectl, eventually
from tests.support.platform import echo_backend, prometheus_api, without_owner

MODEL = "watched"
VERSIONS = ("1", "2")
# Prometheus reads the operator's configuration and rules from volumes the kubelet refreshes
# about once a minute, and then scrapes every 15 s (the PodMonitor's interval).
CONFIG_PROPAGATION_TIMEOUT = 240


def model_deployment(namespace: str) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {
                "name": MODEL,
                "namespace": namespace,
                # Never looked up: the children are applied without their owner reference.
                "uid": "4f1c9a52-0000-4000-8000-000000000002",
            },
            "spec": {
                "model": {"format": "sklearn", "version": "2", "storageUri": "pvc://m/watched"},
            },
        }
    )


def test_the_pod_monitor_becomes_targets_that_are_up_and_the_alerts_load(
    k: Kubectl, namespace: str, echo_image: str, prometheus_url: str
) -> None:
    md = model_deployment(namespace)
    objects, status = desired_monitoring(
        md, service_monitor_available=True, rules_available=True, extra_labels={}
    )
    assert status == "PodMonitor and PrometheusRule created", status
    for version in VERSIONS:
        labels = naming.pod_labels(MODEL, version)
        k.apply(*echo_backend(naming.track_name(MODEL, version), echo_image, version, labels))
    k.apply(*(without_owner(o) for o in objects))

    pool = f"podMonitor/{namespace}/{MODEL}/0"

    def targets_up() -> list[dict[str, Any]] | None:
        active = prometheus_api(prometheus_url, "/api/v1/targets?state=active")["activeTargets"]
        mine = [t for t in active if t["scrapePool"] == pool]
        return (
            mine if len(mine) == len(VERSIONS) and all(t["health"] == "up" for t in mine) else None
        )

    targets = eventually(
        targets_up, timeout=CONFIG_PROPAGATION_TIMEOUT, interval=2, what=f"{pool} targets up"
    )
    assert {t["labels"]["namespace"] for t in targets} == {namespace}
    assert {t["discoveredLabels"][f"__meta_kubernetes_pod_label_{_label(naming.LABEL_VERSION)}"]
            for t in targets} == set(VERSIONS)  # fmt: skip

    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    declared = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    group_names = {g["name"] for g in rule["spec"]["groups"]}

    def alerts_loaded() -> set[str] | None:
        groups = prometheus_api(prometheus_url, "/api/v1/rules?type=alert")["groups"]
        loaded = {r["name"] for g in groups if g["name"] in group_names for r in g["rules"]}
        return loaded if loaded == declared else None

    eventually(
        alerts_loaded, timeout=CONFIG_PROPAGATION_TIMEOUT, interval=2, what=f"alerts {declared}"
    )


def _label(name: str) -> str:
    """A Kubernetes label name as Prometheus' service discovery spells it in meta labels."""
    return "".join(c if c.isalnum() else "_" for c in name)
