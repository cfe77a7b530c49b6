"""rbac.py against the operator's code: every kind the operator watches or writes is granted, and
nothing it never touches is."""

from __future__ import annotations

from modeldeploy_operator import kinds, rbac
from modeldeploy_operator.builders.meta import owner_reference
from modeldeploy_operator.controller import Controller
from modeldeploy_operator.settings import OperatorSettings

from tests.unit.operator.factories import MakeMd
from tests.unit.operator.test_controller import own_watch_requests


def _granted(*, namespaced: bool = False, peering: bool = False) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for permission in rbac.needed(namespaced=namespaced, peering=peering):
        granted.setdefault((permission.group, permission.resource), set()).update(permission.verbs)
    return granted


def test_every_watch_the_controller_registers_is_granted_list_and_watch() -> None:
    settings = OperatorSettings(server_image="img")
    registry = Controller(settings).registry
    watched = {
        (h.selector.group, h.selector.any_name) for h in registry._watching.get_all_handlers()
    }
    # And the controller's own watches (the optional kinds'), as they request.
    own = own_watch_requests(settings)
    assert {r.kind for r in own if "watch" in r.query} == {r.kind for r in own}
    watched |= {(r.kind.group, r.kind.plural) for r in own if r.kind is not None}
    granted = _granted()
    assert watched == set(rbac.CHILD_RESOURCES) | {
        (kinds.MODEL_DEPLOYMENT.group, kinds.MODEL_DEPLOYMENT.plural),
        (kinds.POD.group, kinds.POD.plural),
        (kinds.CRD.group, kinds.CRD.plural),
    }
    for key in watched:
        assert {"list", "watch"} <= granted[key], key


def test_every_kind_the_client_writes_or_lists_is_granted_what_it_needs() -> None:
    granted = _granted()
    assert granted[(kinds.EVENT.group, kinds.EVENT.plural)] == {"create"}
    model = (kinds.MODEL_DEPLOYMENT.group, kinds.MODEL_DEPLOYMENT.plural)
    assert granted[model] == {"list", "watch"}
    assert granted[(model[0], f"{model[1]}/status")] == {"patch"}
    assert granted[(kinds.CRD.group, kinds.CRD.plural)] == {"list", "watch"}
    for child in kinds.CHILD_KINDS:
        # Watched by kopf, listed at start-up and resync, applied (create or patch), deleted.
        assert granted[(child.group, child.plural)] == {
            "list", "watch", "create", "patch", "delete",
        }, child.kind  # fmt: skip


def test_the_retraining_loop_is_granted_what_it_reads_and_writes() -> None:
    granted = _granted()
    policies, runs = kinds.RETRAINING_POLICY.plural, kinds.RETRAINING_RUN.plural
    # Policies are the user's: listed, never written but for their status.
    assert granted[(rbac.MODEL_GROUP, policies)] == {"list"}
    assert granted[(rbac.MODEL_GROUP, f"{policies}/status")] == {"patch"}
    # Runs and their Jobs are the operator's: created by server-side apply, never deleted
    # (a run is an audit record; its Jobs go with it).
    assert granted[(rbac.MODEL_GROUP, runs)] == {"list", "create", "patch"}
    assert granted[(rbac.MODEL_GROUP, f"{runs}/status")] == {"patch"}
    assert granted[(rbac.MODEL_GROUP, f"{runs}/finalizers")] == {"update"}
    assert granted[(kinds.JOB.group, kinds.JOB.plural)] == {"list", "create", "patch"}


def test_pods_are_only_read() -> None:
    assert _granted()[(kinds.POD.group, kinds.POD.plural)] == {"list", "watch"}


def test_nothing_is_granted_beyond_the_known_kinds() -> None:
    known = {(k.group, k.plural) for k in kinds.BY_MANIFEST.values()}
    known |= {
        (rbac.MODEL_GROUP, "modeldeployments/status"),
        (rbac.MODEL_GROUP, "modeldeployments/finalizers"),
        (rbac.MODEL_GROUP, "retrainingpolicies/status"),
        (rbac.MODEL_GROUP, "retrainingruns/status"),
        (rbac.MODEL_GROUP, "retrainingruns/finalizers"),
        ("", "namespaces"),
    }
    granted = {(p.group, p.resource) for p in rbac.PERMISSIONS}
    assert granted <= known, granted - known


def test_no_wildcards_get_only_on_secrets_and_update_only_for_blocking_owner_deletion() -> None:
    for permission in rbac.PERMISSIONS:
        assert "*" not in (permission.group, permission.resource, *permission.verbs)
        if permission.resource == kinds.SECRET.plural:
            # The MLflow credentials a source names, read by name: never listed or watched
            # (that would hand the operator every Secret's value), never written.
            assert (permission.group, permission.verbs) == ("", ("get",)), permission
            continue
        # The controller works from its watch-fed view and writes by server-side apply.
        assert not {"get", "deletecollection"} & set(permission.verbs), permission
        if "update" in permission.verbs:
            assert permission.verbs == ("update",), permission
            assert permission.resource in (
                "modeldeployments/finalizers",
                "retrainingruns/finalizers",
            ), permission


def test_children_that_block_their_owners_deletion_may_do_so(make_md: MakeMd) -> None:
    """The OwnerReferencesPermissionEnforcement admission plugin (on by default on OpenShift)
    admits an owner reference with blockOwnerDeletion only from a client that may update the
    owner's finalizers: without that grant it refuses every child the operator applies."""
    reference = owner_reference(make_md())
    assert reference["blockOwnerDeletion"] is True
    granted = _granted()
    assert granted[(rbac.MODEL_GROUP, "modeldeployments/finalizers")] == {"update"}
    # Namespace-limited installations apply the same children.
    assert "update" in _granted(namespaced=True)[(rbac.MODEL_GROUP, "modeldeployments/finalizers")]


def test_modes_add_only_their_own_permissions() -> None:
    base = _granted()
    assert ("", "namespaces") not in base
    assert _granted(namespaced=True)[("", "namespaces")] == {"list", "watch"}
    cluster_peering = _granted(peering=True)
    assert cluster_peering[(rbac.PEERING_GROUP, "clusterkopfpeerings")] == {
        "list",
        "watch",
        "patch",
    }
    assert (rbac.PEERING_GROUP, "kopfpeerings") not in cluster_peering
    namespaced_peering = _granted(namespaced=True, peering=True)
    assert namespaced_peering[(rbac.PEERING_GROUP, "kopfpeerings")] == {"list", "watch", "patch"}
    assert (rbac.PEERING_GROUP, "clusterkopfpeerings") not in namespaced_peering


def test_only_cluster_scoped_resources_are_cluster_scope() -> None:
    cluster = {p.resource for p in rbac.PERMISSIONS if p.scope is rbac.Scope.CLUSTER}
    assert cluster == {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}
