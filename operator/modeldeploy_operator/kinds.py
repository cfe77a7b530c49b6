"""Every Kubernetes kind the operator names, defined once: where it lives in the REST API, whether
it is a child of a ModelDeployment, and whether its CRD may be absent from a cluster.

The client, the watches, discovery, the builders and RBAC all read this registry; adding a kind
of child is one record here (and its builder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote


@dataclass(frozen=True)
class Kind:
    """A kind of object and its place in the REST API."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def base(self) -> str:
        return f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"

    def path(self, namespace: str | None, name: str | None = None, subresource: str = "") -> str:
        path = self.base
        if self.namespaced and namespace is not None:
            path += f"/namespaces/{quote(namespace)}"
        path += f"/{self.plural}"
        if name is not None:
            path += f"/{quote(name)}"
        if subresource:
            path += f"/{subresource}"
        return path


MODEL_DEPLOYMENT: Final = Kind("modeldeploy.dev", "v1alpha1", "modeldeployments", "ModelDeployment")
DEPLOYMENT: Final = Kind("apps", "v1", "deployments", "Deployment")
SERVICE: Final = Kind("", "v1", "services", "Service")
HPA: Final = Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
HTTP_ROUTE: Final = Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
POD_MONITOR: Final = Kind("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor")
PROMETHEUS_RULE: Final = Kind("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule")
SCALED_OBJECT: Final = Kind("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject")
RETRAINING_POLICY: Final = Kind(
    "modeldeploy.dev", "v1alpha1", "retrainingpolicies", "RetrainingPolicy"
)
RETRAINING_RUN: Final = Kind("modeldeploy.dev", "v1alpha1", "retrainingruns", "RetrainingRun")
# A RetrainingRun's children (the trainer and the evaluator), owned by the run, not by a
# ModelDeployment: the retraining loop reads them, the ModelDeployment watches never do.
JOB: Final = Kind("batch", "v1", "jobs", "Job")
POD: Final = Kind("", "v1", "pods", "Pod")
EVENT: Final = Kind("", "v1", "events", "Event")
# Read, never written: the MLflow credentials a followed source names (credentialsSecretRef).
SECRET: Final = Kind("", "v1", "secrets", "Secret")
CRD: Final = Kind(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
    namespaced=False,
)  # fmt: skip
PEERING: Final = Kind("kopf.dev", "v1", "kopfpeerings", "KopfPeering")
CLUSTER_PEERING: Final = Kind(
    "kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", namespaced=False
)

# A ModelDeployment's children: applied with its ownerReference, watched by the managed-by label.
CHILD_KINDS: Final = (
    DEPLOYMENT, SERVICE, HPA, HTTP_ROUTE, POD_MONITOR, PROMETHEUS_RULE, SCALED_OBJECT,
)  # fmt: skip
# Children whose CRDs come with other projects (Gateway API, Prometheus Operator, KEDA): written
# only while the cluster serves them.
OPTIONAL_KINDS: Final = frozenset({HTTP_ROUTE, POD_MONITOR, PROMETHEUS_RULE, SCALED_OBJECT})
OPTIONAL_GROUPS: Final = frozenset(kind.group for kind in OPTIONAL_KINDS)

# Every kind the operator's own client reads or writes, by (apiVersion, kind) as manifests say.
BY_MANIFEST: Final = {
    (k.api_version, k.kind): k
    for k in (
        MODEL_DEPLOYMENT,
        *CHILD_KINDS,
        POD,
        EVENT,
        SECRET,
        CRD,
        PEERING,
        CLUSTER_PEERING,
        RETRAINING_POLICY,
        RETRAINING_RUN,
        JOB,
    )
}


def kind_of(manifest: dict[str, Any]) -> Kind:
    try:
        return BY_MANIFEST[(manifest["apiVersion"], manifest["kind"])]
    except KeyError as err:
        raise ValueError(
            f"the operator does not handle {manifest.get('apiVersion')}/{manifest.get('kind')}"
        ) from err
