"""Every Kubernetes permission the operator needs, with the reason for each verb.

This is the one list the Helm chart's RBAC is generated from (`chartgen` writes it into
`charts/modeldeploy/templates/_rules.tpl`, comments included), and the one the tests check the
operator's code and the rendered chart against. It is plain data: no imports of the controller,
so the chart can be generated without kopf.

Verbs, and what in the operator needs them:

- `list` + `watch`: kopf's watch streams start with a list and then watch; the controller's
  start-up (`Controller._prime_view`) lists the same kinds directly.
- `patch`: server-side apply is an HTTP PATCH (`KubeClient.apply`); status reports are merge
  patches of the `status` subresource (`KubeClient.patch_status`).
- `create`: a server-side apply that creates an object is authorized as `create` as well as
  `patch`; events are POSTed (`KubeClient.post_event`, and kopf's own event poster).
- `delete`: children that are no longer wanted (an old version after promotion, an HTTPRoute
  after the router changed) are deleted by the reconciler.
- `update` on `modeldeployments/finalizers`, and nothing else: every child's owner reference sets
  `blockOwnerDeletion`, which the OwnerReferencesPermissionEnforcement admission plugin (on by
  default on OpenShift) admits only from a client that may update the owner's finalizers. No
  finalizer is ever written.

- `get` on `secrets`, and nothing else: the MLflow credentials a followed source names
  (`credentialsSecretRef`), read by name when its registry is polled. Secrets are never listed,
  watched or written, and a server's `valueFrom.secretKeyRef` is resolved by the kubelet.

Nothing else is read with `get` (the controller works from its watch-fed view; a child it is
about to create is looked up with a list by name), nothing else is updated with `update`/PUT.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from modeldeploy_operator import kinds


class Scope(StrEnum):
    """Where a permission is granted."""

    # In every namespace the operator watches: one Role per namespace when the chart lists exact
    # `watchNamespaces`; in the ClusterRole when it watches every namespace, or namespaces
    # matching a pattern (`team-*`: a Role cannot follow namespaces created later).
    WATCHED = "watched"
    # Always in the ClusterRole: the resource is cluster-scoped.
    CLUSTER = "cluster"


class When(StrEnum):
    """Which installations need a permission."""

    ALWAYS = "always"
    # Only when the operator watches a list of namespaces or patterns: kopf then lists and
    # watches Namespace objects to follow them (and the patterns' matches) appearing and going.
    NAMESPACED_MODE = "namespaced-mode"
    # Only with kopf peering (high availability), cluster-wide operators: ClusterKopfPeering.
    PEERING_CLUSTER_WIDE = "peering-cluster-wide"
    # Only with kopf peering, namespace-limited operators: a KopfPeering per watched namespace.
    PEERING_NAMESPACED = "peering-namespaced"


@dataclass(frozen=True)
class Permission:
    group: str  # "" is the core group
    resource: str  # plural, "plural/subresource" for a subresource
    verbs: tuple[str, ...]
    why: str
    scope: Scope = Scope.WATCHED
    when: When = When.ALWAYS
    # Limited to the peering object's name (resourceNames) where the verbs allow it.
    peering_object_only: bool = False


MODEL_GROUP: Final = "modeldeploy.dev"
PEERING_GROUP: Final = "kopf.dev"

# What the reconciler does to every kind of child (CONVENTIONS, "Children"): watch it, apply it
# (create or patch), delete it when it is no longer wanted.
CHILD_VERBS: Final = ("list", "watch", "create", "patch", "delete")

# Kinds of children, as (group, plural). Optional kinds (Gateway API, Prometheus Operator, KEDA) are
# granted even when their CRDs are absent: RBAC on a missing resource is inert, and the
# operator starts using them when the CRDs appear (kopf notices new CRDs).
CHILD_RESOURCES: Final = tuple((child.group, child.plural) for child in kinds.CHILD_KINDS)

_CHILD_WHY: Final = {
    "deployments": "one Deployment per live model version",
    "services": "the model's Service and one Service per live version",
    "horizontalpodautoscalers": "one HorizontalPodAutoscaler per live version (autoscaling/v2)",
    "httproutes": "the model's HTTPRoute (Gateway API traffic router)",
    "podmonitors": "scrape configuration for the Prometheus Operator (the serving pods)",
    "prometheusrules": "the model's default alerts",
    "scaledobjects": "a KEDA ScaledObject per version that scales to zero (instead of its HPA)",
}

PERMISSIONS: Final[tuple[Permission, ...]] = (
    Permission(
        MODEL_GROUP,
        "modeldeployments",
        ("list", "watch"),
        "the operator's input: kopf watches ModelDeployments, start-up lists them",
    ),
    Permission(
        MODEL_GROUP,
        "modeldeployments/status",
        ("patch",),
        "status reports (phase, conditions, canary weight) as merge patches",
    ),
    Permission(
        MODEL_GROUP,
        "modeldeployments/finalizers",
        ("update",),
        "children's owner references set blockOwnerDeletion, which the "
        "OwnerReferencesPermissionEnforcement admission plugin (OpenShift) allows only to "
        "whoever may update the owner's finalizers (none is written)",
    ),
    *(
        Permission(
            group,
            plural,
            CHILD_VERBS,
            f"{_CHILD_WHY[plural]}: watched, applied server-side (create/patch), "
            "deleted when no longer wanted",
        )
        for group, plural in CHILD_RESOURCES
    ),
    Permission(
        MODEL_GROUP,
        "retrainingpolicies",
        ("list",),
        "the retraining loop's input: RetrainingPolicies, listed each pass",
    ),
    Permission(
        MODEL_GROUP,
        "retrainingpolicies/status",
        ("patch",),
        "retraining policies' status (Armed, CoolingDown, Suspended, the last trigger)",
    ),
    Permission(
        MODEL_GROUP,
        "retrainingruns",
        ("list", "create", "patch"),
        "a RetrainingRun per trigger the guards let through, applied server-side",
    ),
    Permission(
        MODEL_GROUP,
        "retrainingruns/status",
        ("patch",),
        "a run's phase, versions and the evaluation gate's table",
    ),
    Permission(
        MODEL_GROUP,
        "retrainingruns/finalizers",
        ("update",),
        "the run's Jobs set blockOwnerDeletion on their owner reference to the run",
    ),
    Permission(
        "batch",
        "jobs",
        ("list", "create", "patch"),
        "a retraining run's trainer (the user's template) and evaluator Jobs",
    ),
    Permission(
        "",
        "pods",
        ("list", "watch"),
        "health of the serving pods (image pull errors, crash loops) in the status; the "
        "evaluator's result (its pod's termination message)",
    ),
    Permission(
        "",
        "secrets",
        ("get",),
        "the MLflow credentials a ModelDeployment's source names "
        "(spec.model.source.mlflow.credentialsSecretRef), read by name when its registry is "
        "polled; never listed, watched or written",
    ),
    Permission(
        "",
        "events",
        ("create",),
        "Events on ModelDeployments (rollout steps, failed analysis) from the operator and kopf",
    ),
    Permission(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        ("list", "watch"),
        "kopf notices CRDs installed after start (Gateway API, Prometheus Operator) "
        "and starts watching those kinds",
        scope=Scope.CLUSTER,
    ),
    Permission(
        "",
        "namespaces",
        ("list", "watch"),
        "kopf follows the listed namespaces being created and deleted",
        scope=Scope.CLUSTER,
        when=When.NAMESPACED_MODE,
    ),
    Permission(
        PEERING_GROUP,
        "clusterkopfpeerings",
        ("list", "watch"),
        "kopf peering: see the other replicas' keep-alives",
        scope=Scope.CLUSTER,
        when=When.PEERING_CLUSTER_WIDE,
    ),
    Permission(
        PEERING_GROUP,
        "clusterkopfpeerings",
        ("patch",),
        "kopf peering: write this replica's keep-alive into the chart's peering object",
        scope=Scope.CLUSTER,
        when=When.PEERING_CLUSTER_WIDE,
        peering_object_only=True,
    ),
    Permission(
        PEERING_GROUP,
        "kopfpeerings",
        ("list", "watch"),
        "kopf peering: see the other replicas' keep-alives",
        when=When.PEERING_NAMESPACED,
    ),
    Permission(
        PEERING_GROUP,
        "kopfpeerings",
        ("patch",),
        "kopf peering: write this replica's keep-alive into the chart's peering object",
        when=When.PEERING_NAMESPACED,
        peering_object_only=True,
    ),
)


def needed(*, namespaced: bool, peering: bool) -> tuple[Permission, ...]:
    """The permissions an installation needs: cluster-wide or namespace-limited, with or without
    peering."""
    wanted = {When.ALWAYS}
    if namespaced:
        wanted.add(When.NAMESPACED_MODE)
    if peering:
        wanted.add(When.PEERING_NAMESPACED if namespaced else When.PEERING_CLUSTER_WIDE)
    return tuple(p for p in PERMISSIONS if p.when in wanted)
