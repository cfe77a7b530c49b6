"""Scale to zero: a KEDA ScaledObject in place of a version's HorizontalPodAutoscaler.

An HPA never goes below one pod; `spec.autoscaling.minReplicas: 0` asks for zero when a model is
idle, which KEDA provides. When its ScaledObject CRD (scaledobjects.keda.sh) is served, each
autoscaled version gets a ScaledObject `<md>-v<slug>` (keda.sh/v1alpha1) instead of the HPA of
the same name: KEDA then owns the version's replica count (through an HPA of its own,
`keda-hpa-<name>`), so the operator's HPA must not exist beside it. Without KEDA the HPA stays,
at one pod minimum, and the status says why the model does not scale to zero.

Triggers: the version's own request rate from Prometheus (`modeldeploy_requests_total`, which
counts inference requests only, never probes or scrapes), aimed at `targetRequestsPerSecond` per
pod like the HPA's Pods metric, plus CPU and memory when the spec asks for them.

Waking from zero needs a signal that exists while no pod runs. The server's own counter cannot
be one: with no pod, a request is refused before any server sees it. So the stable version takes
a second Prometheus trigger from the annotation `modeldeploy.dev/scale-from-zero-query` on the
ModelDeployment: a query for the model's request rate as seen upstream (the Gateway's or the
ingress controller's request counter, filtered to the model's route). Without it a version
that reached zero stays there until scaled by hand; the status says so.

A canary never scales to zero (its analysis needs live pods): its bounds are the HPA's, scaled
by its traffic weight (`builders.hpa.replica_bounds`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.api.units import parse_duration
from modeldeploy_operator.builders.hpa import behavior, replica_bounds
from modeldeploy_operator.builders.meta import child_metadata
from modeldeploy_operator.builders.plan import TrackPlan
from modeldeploy_operator.monitoring import metrics as m

API_VERSION: Final = kinds.SCALED_OBJECT.api_version
KIND: Final = kinds.SCALED_OBJECT.kind
CRD: Final = kinds.SCALED_OBJECT.crd_name
ANNOTATION_WAKE_QUERY: Final = "modeldeploy.dev/scale-from-zero-query"
RATE_WINDOW: Final = "1m"
POLLING_INTERVAL_SECONDS: Final = 15
REASON_UNAVAILABLE: Final = "ScaleToZeroUnavailable"
REASON_NO_WAKE_QUERY: Final = "ScaleToZeroWithoutWakeQuery"


@dataclass(frozen=True)
class ScaleToZero:
    """What the operator does about `minReplicas: 0`.

    `requested`: the spec asks for scale to zero. `use_keda`: ScaledObjects replace the HPAs
    (requested and KEDA installed). `reason` and `message`: for a status condition when the
    request cannot be met (fully), None when all is well or nothing was asked.
    """

    requested: bool
    use_keda: bool
    reason: str | None = None
    message: str | None = None


def scale_to_zero(md: ModelDeployment, *, keda_available: bool) -> ScaleToZero:
    """Whether `md` asks for scale to zero, whether KEDA provides it, and what to tell the user."""
    autoscaling = md.spec.autoscaling
    if autoscaling is None or autoscaling.min_replicas > 0:
        return ScaleToZero(requested=False, use_keda=False)
    if not keda_available:
        return ScaleToZero(
            requested=True,
            use_keda=False,
            reason=REASON_UNAVAILABLE,
            message=(
                "spec.autoscaling.minReplicas is 0 but KEDA is not installed (no "
                f"{CRD} CRD): each version keeps at least 1 pod under a "
                "HorizontalPodAutoscaler; install KEDA to scale to zero"
            ),
        )
    if not md.metadata.annotations.get(ANNOTATION_WAKE_QUERY, "").strip():
        return ScaleToZero(
            requested=True,
            use_keda=True,
            reason=REASON_NO_WAKE_QUERY,
            message=(
                "scaling to zero with KEDA, but nothing can wake a version that reached zero: "
                f"set the annotation {ANNOTATION_WAKE_QUERY} to a PromQL query for the model's "
                "request rate at the Gateway or ingress (see docs/monitoring.md)"
            ),
        )
    return ScaleToZero(requested=True, use_keda=True)


def _keda_number(value: float) -> str:
    """A trigger's number as KEDA reads it: JSON (scalersconfig.setConfigValueHelper), so never
    a Kubernetes quantity such as "12500m", which fails the ScaledObject."""
    return json.dumps(float(value))


def _prometheus_trigger(server: str, query: str, target: str) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "metadata": {
            "serverAddress": server,
            "query": query,
            # Per pod: KEDA's Prometheus trigger is an AverageValue metric by default.
            "threshold": target,
            "activationThreshold": "0",
            # No series (no pod has served yet) reads as 0, not as an error.
            "ignoreNullValues": "true",
        },
    }


def desired_scaled_object(
    md: ModelDeployment, plan: TrackPlan, prometheus_url: str
) -> dict[str, Any] | None:
    """The ScaledObject of one version, or None when autoscaling is off or the plan fixes the
    size (the same cases as `builders.hpa.build_hpa`).

    `prometheus_url`: the Prometheus KEDA queries (spec.rollout.analysis.prometheusUrl or the
    operator's default).
    """
    autoscaling = md.spec.autoscaling
    if autoscaling is None or plan.replicas is not None:
        return None
    if autoscaling.target_requests_per_second is None:
        raise ValueError(
            f"ModelDeployment {md.metadata.name}: a KEDA ScaledObject scales on requests per "
            "second and needs spec.autoscaling.targetRequestsPerSecond"
        )
    name, namespace, version = md.metadata.name, md.metadata.namespace, plan.version
    target = naming.track_name(name, version)
    low, high = replica_bounds(autoscaling, plan)
    if plan.track == "stable" and autoscaling.min_replicas == 0:
        low = 0
    rps = _keda_number(autoscaling.target_requests_per_second)
    idle_seconds = round(parse_duration(autoscaling.scale_to_zero_after))
    requests = m.selector(m.REQUESTS_TOTAL, m.version_scope(namespace, name, version))
    triggers = [_prometheus_trigger(prometheus_url, f"sum(rate({requests}[{RATE_WINDOW}]))", rps)]
    wake = md.metadata.annotations.get(ANNOTATION_WAKE_QUERY, "").strip()
    if low == 0 and wake:
        triggers.append(_prometheus_trigger(prometheus_url, wake, rps))
    for resource, utilization in (
        ("cpu", autoscaling.target_cpu_utilization_percentage),
        ("memory", autoscaling.target_memory_utilization_percentage),
    ):
        if utilization is not None:
            triggers.append(
                {
                    "type": resource,
                    "metricType": "Utilization",
                    "metadata": {"value": str(utilization)},
                }
            )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": child_metadata(md, target, naming.labels_for(name, version, plan.track)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicaCount": low,
            "maxReplicaCount": high,
            "pollingInterval": POLLING_INTERVAL_SECONDS,
            "cooldownPeriod": idle_seconds,
            # A new version serves as long before it may go: KEDA's default, 0, takes a
            # ScaledObject that was never active to zero at once, and a new model never
            # becomes Ready.
            "initialCooldownPeriod": idle_seconds,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": behavior(autoscaling)},
            },
            "triggers": triggers,
        },
    }
