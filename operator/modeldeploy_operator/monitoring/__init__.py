"""Monitoring out of the box: what the Prometheus Operator should hold for a ModelDeployment.

`desired_monitoring` is the one entry point the reconciler calls. It is pure: given the
ModelDeployment, whether the Prometheus Operator's CRDs are served and the labels the operator is
configured to add, it returns the PodMonitor and PrometheusRule to apply (each named `<md>`,
labelled `naming.model_labels` plus the extra labels, controlled by the ModelDeployment) and the
sentence for `status.monitoring`. Whatever it does not return, the reconciler deletes, so
`Disabled` removes the objects.

Modes (`spec.monitoring.serviceMonitor` for the scrape object, `spec.monitoring.rules` for the
alerts): `Auto` creates the object when its CRD exists and is silent otherwise; `Enabled` creates
it, or reports an error when the CRD is missing; `Disabled` never creates it.

The status sentence starts with `error:` exactly when an `Enabled` object cannot be created (the
reconciler turns that into a condition); otherwise it says what was created, `disabled`, or
`unavailable: ...` (informational).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import ModelDeployment, MonitoringMode
from modeldeploy_operator.monitoring import rules, scrape

__all__ = ["ERROR_PREFIX", "desired_monitoring"]

ERROR_PREFIX: Final = "error: "
_CRDS: Final = {
    scrape.KIND: kinds.POD_MONITOR.crd_name,
    rules.KIND: kinds.PROMETHEUS_RULE.crd_name,
}
_FIELDS: Final = {
    scrape.KIND: "spec.monitoring.serviceMonitor",
    rules.KIND: "spec.monitoring.rules",
}


def _labels(md: ModelDeployment, extra_labels: Mapping[str, str]) -> dict[str, str]:
    # The operator's own labels win: the controller finds a child's owner by them.
    return {**extra_labels, **naming.model_labels(md.metadata.name)}


def desired_monitoring(
    md: ModelDeployment,
    *,
    service_monitor_available: bool,
    rules_available: bool,
    extra_labels: Mapping[str, str],
) -> tuple[list[dict[str, Any]], str]:
    """The monitoring objects `md` should have, and the sentence for `status.monitoring`.

    `service_monitor_available`: the scrape object's CRD (PodMonitor, monitoring.coreos.com/v1)
    is served. `rules_available`: the PrometheusRule CRD is served. `extra_labels`: the
    operator's configured labels, e.g. `release: kube-prometheus-stack`, so that Prometheus
    selects the objects.
    """
    spec = md.spec.monitoring
    labels = _labels(md, extra_labels)
    wanted = (
        (scrape.KIND, spec.service_monitor, service_monitor_available),
        (rules.KIND, spec.rules, rules_available),
    )
    manifests: list[dict[str, Any]] = []
    created: list[str] = []
    missing_auto: list[str] = []
    disabled: list[str] = []
    errors: list[str] = []
    for kind, mode, available in wanted:
        if mode == MonitoringMode.DISABLED:
            disabled.append(kind)
            continue
        if not available:
            if mode == MonitoringMode.ENABLED:
                errors.append(
                    f"{_FIELDS[kind]} is Enabled but the {kind} CRD ({_CRDS[kind]}) is not "
                    "installed: install the Prometheus Operator's CRDs or set it to Auto"
                )
            else:
                missing_auto.append(kind)
            continue
        if kind == scrape.KIND:
            manifests.append(scrape.build_pod_monitor(md, labels))
        else:
            manifests.append(rules.build_prometheus_rule(md, labels))
        created.append(kind)
    return manifests, _status(created, disabled, missing_auto, errors)


def _status(
    created: list[str], disabled: list[str], missing_auto: list[str], errors: list[str]
) -> str:
    parts = [f"{' and '.join(created)} created"] if created else []
    if missing_auto:
        reason = (
            "monitoring.coreos.com CRDs not installed"
            if len(missing_auto) == len(_CRDS)
            else f"{missing_auto[0]} CRD ({_CRDS[missing_auto[0]]}) not installed"
        )
        parts.append(f"unavailable: {reason}")
    if created and disabled:
        parts.append(f"{disabled[0]} disabled")
    if errors:
        return ERROR_PREFIX + "; ".join(errors + parts)
    return "; ".join(parts) or "disabled"
