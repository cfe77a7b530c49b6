"""The Helm chart's values, typed: every key, its default, its bounds and what it means.

`chartgen` writes `charts/modeldeploy/values.yaml` (defaults, with each description as a comment)
and `values.schema.json` (so `helm install` rejects a typo or a bad value before anything reaches
the cluster) from these models. Defaults that the operator also has (Prometheus URL, workers,
metrics port, log format, server image) come from `settings`, so the chart and a bare
`modeldeploy operator` agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modeldeploy_operator.api import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    HTTP_URL_PATTERN,
    PROMETHEUS_DURATION_PATTERN,
    Quantity,
)
from modeldeploy_operator.settings import DEFAULT_SERVER_IMAGE, OperatorSettings

OPERATOR_IMAGE_REPOSITORY: Final = "ghcr.io/modeldeploy/modeldeploy-operator"
SERVER_IMAGE_REPOSITORY: Final = DEFAULT_SERVER_IMAGE.rsplit(":", 1)[0]

# An image repository: registry host (with port) and path, no tag or digest.
IMAGE_REPOSITORY_PATTERN: Final = r"^[a-z0-9]+([._:-][a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$"
IMAGE_TAG_PATTERN: Final = r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
IMAGE_DIGEST_PATTERN: Final = r"^(sha256:[a-f0-9]{64})?$"
LABEL_KEY_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN: Final = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
# A namespace name, or a kopf namespace pattern: a glob (`*`, `?`), `!` in front excludes.
NAMESPACE_OR_PATTERN: Final = r"^!?[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$"
NamespaceOrPattern = Annotated[str, Field(pattern=NAMESPACE_OR_PATTERN, max_length=64)]
ImagePrefix = Annotated[str, Field(pattern=r"^\S+$", max_length=512)]
MAX_REPLICAS: Final = 5
# A starting point: memory grows with the number of ModelDeployments and their children, which
# the operator keeps in memory from its watches.
DEFAULT_REQUESTS: Final[dict[str, int | str]] = {"cpu": "100m", "memory": "128Mi"}
DEFAULT_LIMITS: Final[dict[str, int | str]] = {"memory": "512Mi"}

_DEFAULTS: Final = OperatorSettings()


def _labels(description: str, default: dict[str, str] | None = None) -> Any:
    return Field(
        default_factory=lambda: dict(default or {}),
        description=description,
        json_schema_extra={
            "propertyNames": {"pattern": LABEL_KEY_PATTERN, "maxLength": 317},
            "additionalProperties": {"type": "string", "pattern": LABEL_VALUE_PATTERN},
        },
    )


class ValuesModel(BaseModel):
    """camelCase keys as in values.yaml; an unknown key is an error (a typo must not be
    silently ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class OperatorImage(ValuesModel):
    """The operator's image."""

    repository: str = Field(
        default=OPERATOR_IMAGE_REPOSITORY,
        description="Registry and repository, without tag.",
        pattern=IMAGE_REPOSITORY_PATTERN,
    )
    tag: str = Field(
        default="",
        description="Empty: the chart's appVersion, which is the package version.",
        pattern=IMAGE_TAG_PATTERN,
    )
    digest: str = Field(
        default="",
        description="sha256:... pins the image; wins over the tag.",
        pattern=IMAGE_DIGEST_PATTERN,
    )
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default="IfNotPresent", description="Kubernetes imagePullPolicy."
    )


class ServerImage(ValuesModel):
    """The model server image the operator puts on serving pods when a ModelDeployment names
    none (`spec.server.image`)."""

    repository: str = Field(
        default=SERVER_IMAGE_REPOSITORY,
        description="Registry and repository, without tag.",
        pattern=IMAGE_REPOSITORY_PATTERN,
    )
    tag: str = Field(
        default="",
        description="Empty: the chart's appVersion, which is the package version.",
        pattern=IMAGE_TAG_PATTERN,
    )
    digest: str = Field(
        default="",
        description="sha256:... pins the image; wins over the tag.",
        pattern=IMAGE_DIGEST_PATTERN,
    )


class LocalObjectReference(ValuesModel):
    name: str = Field(description="Name of a Secret in the release namespace.", min_length=1)


class OperatorServiceMonitor(ValuesModel):
    """A ServiceMonitor for the operator's own /metrics (needs the Prometheus Operator)."""

    enabled: bool = Field(default=False, description="Create the ServiceMonitor.")
    labels: dict[str, str] = _labels(
        "Extra labels, so your Prometheus selects it (kube-prometheus-stack: "
        "release: <its release name>)."
    )
    interval: str = Field(
        default="30s", description="Scrape interval.", pattern=PROMETHEUS_DURATION_PATTERN
    )
    scrape_timeout: str = Field(
        default="10s", description="Scrape timeout.", pattern=PROMETHEUS_DURATION_PATTERN
    )


class Metrics(ValuesModel):
    """The operator's /metrics, /healthz and /readyz endpoint."""

    port: int = Field(
        default=_DEFAULTS.metrics_port,
        description="Container and Service port of /metrics, /healthz and /readyz (1024 or "
        "above: the operator runs as a non-root user without capabilities).",
        ge=1024,
        le=65535,
    )
    service_monitor: OperatorServiceMonitor = Field(
        default_factory=OperatorServiceMonitor, description=OperatorServiceMonitor.__doc__
    )


class TokenSecret(ValuesModel):
    name: str = Field(
        default="",
        description="Secret (release namespace) holding the bearer token Alertmanager sends.",
        pattern=rf"({DNS_SUBDOMAIN_PATTERN})|^$",
        max_length=253,
    )
    key: str = Field(
        default="token", description="The Secret's key holding the token.", min_length=1
    )


class AlertmanagerReceiver(ValuesModel):
    """The webhook receiver for RetrainingPolicies' alertmanager triggers (POST /alertmanager
    on its own port and Service). Every replica serves it; a standby answers 503 and
    Alertmanager retries, reaching the leader."""

    enabled: bool = Field(default=False, description="Serve the receiver.")
    port: int = Field(
        default=_DEFAULTS.alertmanager_port,
        description="Container and Service port of the receiver (1024 or above).",
        ge=1024,
        le=65535,
    )
    token_secret: TokenSecret = Field(
        default_factory=TokenSecret,
        description="The Secret holding the bearer token (required when enabled); mounted as a "
        "file the operator re-reads on every request, so rotating it needs no restart.",
    )


class Peering(ValuesModel):
    """kopf peering: replicas exchange keep-alives through a peering object and only the one
    with the highest priority reconciles. Always on when replicaCount > 1."""

    enabled: bool = Field(
        default=False,
        description="Use peering even with one replica (e.g. to pause it with a "
        "higher-priority operator started by hand).",
    )
    name: str = Field(
        default="",
        description="Name of the (Cluster)KopfPeering object. Empty: the release's full name.",
        pattern=rf"({DNS_SUBDOMAIN_PATTERN})|^$",
        max_length=253,
    )


class ServiceAccount(ValuesModel):
    create: bool = Field(default=True, description="Create the operator's ServiceAccount.")
    name: str = Field(
        default="",
        description="Name to use (or of an existing one when create is false). Empty: the "
        "release's full name.",
        pattern=rf"({DNS_SUBDOMAIN_PATTERN})|^$",
        max_length=253,
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations on the ServiceAccount."
    )


class Rbac(ValuesModel):
    create: bool = Field(
        default=True,
        description="Create the (Cluster)Roles and bindings the operator needs (exactly the "
        "verbs in operator/modeldeploy_operator/rbac.py; no wildcards, no Secrets).",
    )


class Resources(ValuesModel):
    requests: dict[str, Quantity] = Field(
        default_factory=lambda: dict(DEFAULT_REQUESTS),
        description="Requested resources.",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=lambda: dict(DEFAULT_LIMITS),
        description="Resource limits (no CPU limit: throttling only slows reconciliation).",
    )


class PodDisruptionBudget(ValuesModel):
    enabled: bool = Field(
        default=True,
        description="Keep one replica through voluntary disruptions (only when replicaCount > 1).",
    )


class GrafanaDashboard(ValuesModel):
    """The Grafana dashboard, as a ConfigMap the Grafana sidecar (kube-prometheus-stack) loads."""

    enabled: bool = Field(default=True, description="Create the dashboard ConfigMap.")
    namespace: str = Field(
        default="",
        description="Namespace of the ConfigMap (where your Grafana sidecar looks). Empty: the "
        "release namespace.",
        pattern=rf"({DNS_LABEL_PATTERN})|^$",
        max_length=63,
    )
    labels: dict[str, str] = _labels(
        "Labels the Grafana sidecar selects dashboards by.", {"grafana_dashboard": "1"}
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations (the sidecar's folder annotation, for example).",
    )


class Values(ValuesModel):
    """Values of the modeldeploy Helm chart."""

    image: OperatorImage = Field(default_factory=OperatorImage, description=OperatorImage.__doc__)
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, description="Secrets for pulling the operator's image."
    )
    name_override: str = Field(
        default="", description="Replaces the chart name in resource names.", max_length=40
    )
    fullname_override: str = Field(
        default="", description="Replaces the release-and-chart full name.", max_length=52
    )
    replica_count: int = Field(
        default=1,
        description="Operator replicas. More than one turns on kopf peering (one replica "
        "reconciles, the others stand by) and spreads the replicas over nodes.",
        ge=1,
        le=MAX_REPLICAS,
    )
    watch_namespaces: list[NamespaceOrPattern] = Field(
        default_factory=list,
        description="Namespaces whose ModelDeployments this operator serves. Empty: every "
        "namespace (a ClusterRole). Exact names: a Role in each, and a small ClusterRole for "
        "the cluster-scoped reads. Patterns (kopf's globs: team-*, !team-test) follow "
        "namespaces created later, so their permissions go in the ClusterRole; they cannot be "
        "combined with peering (kopf needs a peering object in every namespace).",
        json_schema_extra={"uniqueItems": True},
    )
    server_image: ServerImage = Field(default_factory=ServerImage, description=ServerImage.__doc__)
    allowed_image_prefixes: list[ImagePrefix] = Field(
        default_factory=list,
        description="Images a ModelDeployment may run (spec.server.image) must start with one of "
        "these, e.g. registry.example.com/models/ (end with / to mean a path). Other images are "
        "refused: nothing is applied, Degraded says ImageNotAllowed. Empty: any image. The "
        "serverImage is always allowed. See docs/install.md, Who can run what.",
        json_schema_extra={"uniqueItems": True},
    )
    prometheus_url: str = Field(
        default=_DEFAULTS.prometheus_url,
        description="Prometheus the canary analysis queries when a ModelDeployment names none.",
        pattern=HTTP_URL_PATTERN,
    )
    log_format: Literal["text", "json"] = Field(
        # Unlike a terminal (the operator's own default is text), a cluster has log collectors.
        default="json",
        description="Operator log format.",
    )
    workers: int = Field(
        default=_DEFAULTS.workers,
        description="ModelDeployments reconciled concurrently.",
        ge=1,
        le=64,
    )
    model_monitor_labels: dict[str, str] = _labels(
        "Labels the operator puts on the PodMonitors and PrometheusRules it creates for each "
        "ModelDeployment, so your Prometheus selects them (kube-prometheus-stack: release: "
        "<its release name>)."
    )
    metrics: Metrics = Field(default_factory=Metrics, description=Metrics.__doc__)
    peering: Peering = Field(default_factory=Peering, description=Peering.__doc__)
    alertmanager_receiver: AlertmanagerReceiver = Field(
        default_factory=AlertmanagerReceiver, description=AlertmanagerReceiver.__doc__
    )
    service_account: ServiceAccount = Field(
        default_factory=ServiceAccount, description="The operator's ServiceAccount."
    )
    rbac: Rbac = Field(default_factory=Rbac, description="Role-based access control.")
    resources: Resources = Field(
        default_factory=Resources, description="The operator container's resources."
    )
    pod_disruption_budget: PodDisruptionBudget = Field(
        default_factory=PodDisruptionBudget, description="A PodDisruptionBudget for the operator."
    )
    grafana_dashboard: GrafanaDashboard = Field(
        default_factory=GrafanaDashboard, description=GrafanaDashboard.__doc__
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations on the operator's pods."
    )
    pod_labels: dict[str, str] = _labels("Extra labels on the operator's pods.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector of the operator's pods."
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations of the operator's pods."
    )
    affinity: dict[str, Any] = Field(
        default_factory=dict,
        description="Affinity of the operator's pods. Empty: with more than one replica, "
        "replicas prefer different nodes.",
    )
    priority_class_name: str = Field(
        default="",
        description="PriorityClass of the operator's pods.",
        pattern=rf"({DNS_SUBDOMAIN_PATTERN})|^$",
    )
    global_: dict[str, Any] = Field(
        default_factory=dict,
        alias="global",
        description="Helm's global values (unused by this chart; allowed for umbrella charts).",
    )
