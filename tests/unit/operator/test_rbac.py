"""rbac.py against the operator's code: every kind the operator watches or writes is granted, and
nothing it never touches is."""

from __future__ import annotations

from modeldeploy_operator import controller, kube, rbac, reconciler


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _granted(*, namespaced: bool = False, peering: bool = False) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for permission in rbac.needed(namespaced=namespaced, peering=peering):
        granted.setdefault((permission.group, permission.resource), set()).update(permission.verbs)
    return granted


def test_the_child_kinds_are_exactly_the_ones_the_controller_watches() -> None:
    watched = {(group, plural) for group, _, plural in controller.CHILD_RESOURCES}
    assert set(rbac.CHILD_RESOURCES) == watched


def test_every_kind_the_client_writes_or_lists_is_granted_what_it_needs() -> None:
    granted = _granted()
    for (api_version, kind), resource in kube.KINDS.items():
        key = (_group(api_version), resource.plural)
        if kind == "Event":
            assert granted[key] == {"create"}
        elif kind == "ModelDeployment":
            assert granted[key] == {"list", "watch"}
            assert granted[(key[0], f"{resource.plural}/status")] == {"patch"}
        elif kind == "CustomResourceDefinition":
            assert granted[key] == {"list", "watch"}
        else:
            # A child: watched by kopf, listed at start-up, applied (create or patch), deleted.
            assert granted[key] == {"list", "watch", "create", "patch", "delete"}, kind


def test_pods_are_only_read() -> None:
    pods = reconciler.POD_KIND
    assert _granted()[(_group(pods.api_version), pods.plural)] == {"list", "watch"}


def test_nothing_is_granted_beyond_the_known_kinds() -> None:
    known = {(_group(v), r.plural) for (v, _), r in kube.KINDS.items()}
    known |= {(_group(reconciler.POD_KIND.api_version), reconciler.POD_KIND.plural)}
    known |= {(rbac.MODEL_GROUP, "modeldeployments/status"), ("", "namespaces")}
    known |= {(rbac.PEERING_GROUP, "kopfpeerings"), (rbac.PEERING_GROUP, "clusterkopfpeerings")}
    granted = {(p.group, p.resource) for p in rbac.PERMISSIONS}
    assert granted <= known, granted - known


def test_no_secrets_no_wildcards_no_get_or_update() -> None:
    for permission in rbac.PERMISSIONS:
        assert "secrets" not in permission.resource
        assert "*" not in (permission.group, permission.resource, *permission.verbs)
        # The controller works from its watch-fed view and writes by server-side apply.
        assert not {"get", "update", "deletecollection"} & set(permission.verbs), permission


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
