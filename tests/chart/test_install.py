"""`helm install` into the local control plane, and the real operator authenticated as the
chart's ServiceAccount: what the chart grants is what the apiserver authorizes, it is enough to
serve a model, and taking one verb away is a 403.

Other operators may run cluster-wide in the same cluster (a developer's e2e run); the checks
below hold whether or not they do: they look at requests made *as the chart's ServiceAccount*
(the apiserver's audit log records the user of every write) rather than at who got there first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator import rbac

from tests.support.audit import WRITE_VERBS, AuditLog
from tests.support.chart import CHART_PREFIX, ChartInstaller, fresh_name
from tests.support.helm import CHART
from tests.support.kube import Kubectl, KubectlError, eventually
from tests.support.models import condition, model

ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@pytest.fixture
def audit_log(kube: Kubectl) -> Path:
    """The audit log of the cluster under test, which another checkout may have started."""
    log = AuditLog.beside(kube.kubeconfig)
    assert log.available, f"no audit log at {log.path}: the cluster of cluster/up.sh has one"
    return log.path


def audit_events(path: Path, offset: int, user: str, namespace: str) -> list[dict[str, Any]]:
    """Completed write requests by `user` in `namespace` since `offset` (the audit policy
    records writes only)."""
    events = []
    with path.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            event = json.loads(line)
            if (
                event.get("stage") == "ResponseComplete"
                and event.get("verb") in WRITE_VERBS
                and event.get("user", {}).get("username") == user
                and event.get("objectRef", {}).get("namespace") == namespace
            ):
                events.append(event)
    return events


def denied(events: list[dict[str, Any]]) -> list[str]:
    return [
        f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('subresource', '')}"
        for e in events
        if e.get("responseStatus", {}).get("code") == 403
    ]


def access_reviews(
    kube: Kubectl, user: str, checks: list[tuple[str | None, str, str, str]]
) -> dict[tuple[str | None, str, str, str], bool]:
    """(namespace, group, resource, verb) → allowed, answered by the apiserver's authorizer
    for `user` (SubjectAccessReview, one kubectl call for all)."""
    reviews = []
    for namespace, group, resource, verb in checks:
        plural, _, subresource = resource.partition("/")
        attributes = {"verb": verb, "group": group, "resource": plural}
        if subresource:
            attributes["subresource"] = subresource
        if namespace:
            attributes["namespace"] = namespace
        reviews.append(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user,
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                    "resourceAttributes": attributes,
                },
            }
        )
    out = kube.run(
        "create", "-o", "json", "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": reviews}),
    )  # fmt: skip
    decoder, index = json.JSONDecoder(), 0
    answers: list[dict[str, Any]] = []
    while index < len(out.strip()):
        answer, index = decoder.raw_decode(out, index)
        answers.extend(answer["items"] if answer.get("kind") == "List" else [answer])
        while index < len(out) and out[index].isspace():
            index += 1
    assert len(answers) == len(checks)
    return {
        check: bool(a["status"].get("allowed")) for check, a in zip(checks, answers, strict=True)
    }


@pytest.fixture
def models_namespace() -> str:
    return fresh_name(f"{CHART_PREFIX}-models")


def role_of(kube: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    role = kube.in_namespace(namespace).get("role", name)
    assert role is not None, f"no Role {namespace}/{name}"
    return role


def replace_role(kube: Kubectl, role: dict[str, Any]) -> None:
    role = json.loads(json.dumps(role))
    for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        role["metadata"].pop(field, None)
    kube.run("replace", "-f", "-", stdin=json.dumps(role))


def without_verb(kube: Kubectl, role: dict[str, Any], resource: str, verb: str, user: str) -> None:
    """Replaces a Role with the same role minus one verb on one resource, then waits until the
    apiserver's authorizer denies it to `user` (what `kubectl auth can-i --as` asks): it reads
    Roles from a cache that trails the update, and a request sent at once may still pass."""
    role = json.loads(json.dumps(role))
    assert kube.namespace is not None, "a Role is namespaced"
    checks: list[tuple[str | None, str, str, str]] = []
    for rule in role["rules"]:
        if resource in rule["resources"] and verb in rule["verbs"]:
            rule["verbs"].remove(verb)
            checks += [(kube.namespace, group, resource, verb) for group in rule["apiGroups"]]
    assert checks, f"the Role grants no {verb} on {resource}"
    # A rule left with no verb is invalid: it goes.
    role["rules"] = [rule for rule in role["rules"] if rule["verbs"]]
    replace_role(kube, role)
    eventually(
        lambda: not any(access_reviews(kube, user, checks).values()),
        timeout=60,
        what=f"the authorizer denying {user} {verb} on {resource}",
    )


def test_install_waits_for_the_operator_and_uninstall_keeps_the_crds(
    installer: ChartInstaller, kube: Kubectl
) -> None:
    release = installer.install({"replicaCount": 2})
    k = kube.in_namespace(release.namespace)
    [deployment] = k.list("deployments", "app.kubernetes.io/component=operator")
    assert deployment["status"]["readyReplicas"] == 2
    name = deployment["metadata"]["name"]
    assert kube.get("clusterrole", release.cluster_name) is not None
    assert kube.get("clusterkopfpeering", release.cluster_name) is not None
    assert k.get("poddisruptionbudget", name) is not None
    assert len(k.list("configmaps", "grafana_dashboard=1")) == 1

    release.helm.upgrade(release.name, release.namespace, {"replicaCount": 1})
    assert kube.get("clusterkopfpeering", release.cluster_name) is None
    assert k.get("poddisruptionbudget", name) is None

    release.helm.uninstall(release.name, release.namespace)
    assert kube.get("clusterrole", release.cluster_name) is None
    assert kube.get("clusterrolebinding", release.cluster_name) is None
    # Helm never deletes CRDs: the models keep running after the operator is uninstalled.
    for path in (CHART / "crds").glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            assert kube.get("crd", crd["metadata"]["name"]) is not None


def test_the_apiserver_authorizes_exactly_what_rbac_py_lists(
    installer: ChartInstaller, kube: Kubectl, models_namespace: str
) -> None:
    release = installer.install(
        {"watchNamespaces": [models_namespace], "peering": {"enabled": True}}
    )
    permissions = rbac.needed(namespaced=True, peering=True)
    granted = {
        (p.group, p.resource, verb): p.peering_object_only for p in permissions for verb in p.verbs
    }
    resources = {(p.group, p.resource) for p in rbac.PERMISSIONS} | {("", "secrets")}
    cluster_scoped = {p.resource for p in rbac.PERMISSIONS if p.scope is rbac.Scope.CLUSTER}
    checks: list[tuple[str | None, str, str, str]] = []
    expected: list[bool] = []
    for group, resource in sorted(resources):
        places: list[str | None] = (
            [None]
            if resource in cluster_scoped
            else [models_namespace, release.namespace, "default"]
        )
        for verb in ALL_VERBS:
            for namespace in places:
                allowed = (group, resource, verb) in granted and namespace in (
                    None,
                    models_namespace,
                )
                # A rule limited by resourceNames allows nothing to a request without a name.
                if allowed and granted[(group, resource, verb)]:
                    allowed = False
                checks.append((namespace, group, resource, verb))
                expected.append(allowed)
    answers = access_reviews(kube, release.user, checks)
    wrong = [check for check, want in zip(checks, expected, strict=True) if answers[check] != want]
    assert not wrong, f"the authorizer disagrees with rbac.py on {wrong}"
    # The peering object itself may be patched, by name.
    review = kube.run(
        "auth", "can-i", "patch", f"kopfpeerings.kopf.dev/{release.cluster_name}",
        "-n", models_namespace, f"--as={release.user}", check=False,
    )  # fmt: skip
    assert review.strip() == "yes"


def test_server_side_apply_of_a_new_object_needs_create_as_well_as_patch(
    installer: ChartInstaller, kube: Kubectl, models_namespace: str, tmp_path: Path
) -> None:
    """Why rbac.py grants `create` on children although the operator only ever PATCHes."""
    release = installer.install({"watchNamespaces": [models_namespace]})
    models = kube.in_namespace(models_namespace)
    role = role_of(kube, models_namespace, release.cluster_name)
    without_verb(models, role, "services", "create", release.user)
    as_operator = Kubectl(release.kubeconfig(tmp_path / "sa.kubeconfig"), models_namespace)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "probe"},
        "spec": {"ports": [{"port": 80}]},
    }
    with pytest.raises(KubectlError, match=r"cannot create resource \"services\""):
        as_operator.apply(service, server_side=True)
    replace_role(models, role)  # create granted again: the same apply succeeds

    def applied() -> bool:
        as_operator.apply(service, server_side=True)
        return True

    eventually(applied, timeout=10, what="server-side apply with create granted")
    assert models.get("service", "probe") is not None


def test_the_operator_as_the_charts_service_account_serves_a_model(
    installer: ChartInstaller,
    kube: Kubectl,
    models_namespace: str,
    tmp_path: Path,
    audit_log: Path,
) -> None:
    release = installer.install(
        {"watchNamespaces": [models_namespace], "peering": {"enabled": True}}
    )
    offset = audit_log.stat().st_size
    operator = release.operator(models_namespace, tmp_path, f"--peering={release.cluster_name}")
    models = kube.in_namespace(models_namespace)
    models.apply(model("iris", replicas=1))

    def ready() -> bool:
        md = models.get("md", "iris") or {}
        status = md.get("status", {})
        return bool(
            status.get("phase") == "Ready"
            and status.get("observedGeneration") == md["metadata"]["generation"]
        )

    eventually(ready, timeout=90, what="iris Ready")
    assert operator.probe("/readyz")
    events = audit_events(audit_log, offset, release.user, models_namespace)
    assert not denied(events), denied(events)
    log = operator.log_path.read_text()
    assert "403" not in log and "orbidden" not in log and "permissions" not in log, log
    # Nothing else reconciles c-* namespaces: this operator made every child itself.
    written = {(e["objectRef"]["resource"], e["verb"]) for e in events}
    assert {("deployments", "patch"), ("services", "patch")} <= written, written
    assert ("modeldeployments", "patch") in written and ("events", "create") in written


def test_without_patch_on_deployments_the_operator_gets_403(
    installer: ChartInstaller,
    kube: Kubectl,
    models_namespace: str,
    tmp_path: Path,
    audit_log: Path,
) -> None:
    release = installer.install({"watchNamespaces": [models_namespace]})
    models = kube.in_namespace(models_namespace)
    role = role_of(kube, models_namespace, release.cluster_name)
    without_verb(models, role, "deployments", "patch", release.user)
    offset = audit_log.stat().st_size
    operator = release.operator(models_namespace, tmp_path)
    models.apply(model("iris", replicas=1))

    def forbidden_patch() -> list[str]:
        return [d for d in denied(audit_events(audit_log, offset, release.user, models_namespace))
                if d.startswith("patch deployments")]  # fmt: skip

    eventually(forbidden_patch, timeout=60, what="a 403 on patching the Deployment")
    # The apiserver audits the answer before the operator has read it and logged it.
    refusal = f'User "{release.user}" cannot patch resource "deployments"'
    eventually(lambda: refusal in operator.log_path.read_text(), what="the refusal logged")
    assert not models.list("deployments")
    md = models.get("md", "iris") or {}
    assert md.get("status", {}).get("phase") != "Ready"


def test_without_update_on_finalizers_every_child_is_refused_and_the_model_says_why(
    installer: ChartInstaller,
    kube: Kubectl,
    models_namespace: str,
    tmp_path: Path,
    audit_log: Path,
) -> None:
    """The local apiserver runs OwnerReferencesPermissionEnforcement, as OpenShift does: the
    children's owner references set blockOwnerDeletion, which it admits only from whoever may
    update the owner's finalizers -- the one `update` the chart grants."""
    release = installer.install({"watchNamespaces": [models_namespace]})
    models = kube.in_namespace(models_namespace)
    role = role_of(kube, models_namespace, release.cluster_name)
    without_verb(models, role, "modeldeployments/finalizers", "update", release.user)
    offset = audit_log.stat().st_size
    release.operator(models_namespace, tmp_path)
    models.apply(model("iris", replicas=1))

    def refused() -> dict[str, Any] | None:
        md = models.get("md", "iris")
        return md if condition(md, "Degraded").get("reason") == "ApplyFailed" else None

    md = eventually(refused, timeout=60, what="Degraded: ApplyFailed")
    assert "blockOwnerDeletion" in condition(md, "Degraded")["message"], md["status"]
    assert not models.list("deployments") and not models.list("services")
    refusals = [d for d in denied(audit_events(audit_log, offset, release.user, models_namespace))
                if d.startswith("patch ")]  # fmt: skip
    assert refusals, "the admission plugin refused nothing: is it enabled on the apiserver?"


def test_without_list_on_pods_the_operator_never_becomes_ready(
    installer: ChartInstaller, kube: Kubectl, models_namespace: str, tmp_path: Path
) -> None:
    release = installer.install({"watchNamespaces": [models_namespace]})
    models = kube.in_namespace(models_namespace)
    role = role_of(kube, models_namespace, release.cluster_name)
    without_verb(models, role, "pods", "list", release.user)
    operator = release.operator(models_namespace, tmp_path, start=False)
    with pytest.raises(RuntimeError, match="not ready"):
        operator.start(timeout=20)
    log = operator.log_path.read_text()
    assert f'User "{release.user}" cannot list resource "pods"' in log
