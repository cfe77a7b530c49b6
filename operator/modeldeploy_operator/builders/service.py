"""Services: one per live version (what its HTTPRoute backend or ServiceMonitor targets) and
the model's own Service, named after the ModelDeployment, which clients call.

Selecting several versions from one Service: a selector cannot OR label values, and a label
that marks "receives traffic" would have to change on pods as traffic moves — a pod template
label change restarts every pod. So the model Service selects on the version when exactly one
version receives traffic and on the model alone when several do; the latter is only correct
when every live version should receive traffic, which `desired_children` checks. With the
replica-ratio router that is precisely the canary split: traffic follows ready pods.

The model Service carries no version label; monitoring selects the per-version Services by
`modeldeploy.dev/version` existing, so pods are never scraped twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders.deployment import PORT_NAME
from modeldeploy_operator.builders.meta import child_metadata
from modeldeploy_operator.builders.plan import TrackPlan

SERVICE_PORT: Final = 80


def _service(
    md: ModelDeployment, name: str, labels: dict[str, str], selector: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(md, name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def build_track_service(md: ModelDeployment, plan: TrackPlan) -> dict[str, Any]:
    """The Service of one version, named like its Deployment."""
    name, version = md.metadata.name, plan.version
    return _service(
        md,
        naming.track_name(name, version),
        naming.labels_for(name, version, plan.track),
        naming.version_selector(name, version),
    )


def build_model_service(md: ModelDeployment, selected_versions: Sequence[str]) -> dict[str, Any]:
    """The Service clients call; it selects the pods of the versions that receive traffic."""
    name = md.metadata.name
    versions = sorted(set(selected_versions))
    if not versions:
        raise ValueError("the model Service needs at least one version to send traffic to")
    selector = (
        naming.version_selector(name, versions[0])
        if len(versions) == 1
        else naming.model_selector(name)
    )
    return _service(md, naming.model_service_name(name), naming.model_labels(name), selector)
