"""`helm install` into the local control plane, and the real operator authenticated as the
chart's ServiceAccount: what the chart grants is what the apiserver authorizes, it is enough to
serve a model, and taking one verb away is a 403.

Other operators may run cluster-wide in the same cluster (a developer's e2e run); the checks
below hold whether or not they do: they look at requests made *as the chart's ServiceAccount*
(the apiserver's audit log records the user of every write) rather than at who got there first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator import rbac

from tests.chart.conftest import NamespacedOperator, Release, fresh_name
from tests.support.audit import AUDIT_LOG
from tests.support.helm import CHART
from tests.support.kube import Kubectl, KubectlError, eventually
from tests.support.service_account import username

ROOT = Path(__file__).resolve().parents[2]
# The image the e2e suite's operators use too, so two operators on one model agree.
SERVER_IMAGE = "example.org/modeldeploy-server:test"
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

Install = Callable[..., Release]
StartOperator = Callable[[Release, list[str], tuple[str, ...]], NamespacedOperator]


def model(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "format": "sklearn",
                "version": "1",
                "storageUri": f"http://models.example.org/{name}/1/model.joblib",
            },
            "replicas": 1,
        },
    }


def audit_events(offset: int, user: str, namespace: str) -> list[dict[str, Any]]:
    """Completed write requests by `user` in `namespace` since `offset` (the audit policy
    records writes only)."""
    events = []
    with AUDIT_LOG.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            event = json.loads(line)
            if (
                event.get("stage") == "ResponseComplete"
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
    return fresh_name("c-models")


def replace_role(kube: Kubectl, role: dict[str, Any]) -> None:
    role = json.loads(json.dumps(role))
    for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        role["metadata"].pop(field, None)
    kube.run("replace", "-f", "-", stdin=json.dumps(role))


def without_verb(kube: Kubectl, role: dict[str, Any], resource: str, verb: str) -> None:
    """Replaces a Role with the same role minus one verb on one resource."""
    role = json.loads(json.dumps(role))
    for rule in role["rules"]:
        if resource in rule["resources"] and verb in rule["verbs"]:
            rule["verbs"].remove(verb)
    replace_role(kube, role)


def test_install_waits_for_the_operator_and_uninstall_keeps_the_crds(
    install: Install, kube: Kubectl
) -> None:
    release = install({"replicaCount": 2})
    k = kube.in_namespace(release.namespace)
    [deployment] = k.list("deployments", "app.kubernetes.io/component=operator")
    assert deployment["status"]["readyReplicas"] == 2
    cluster_name = f"{release.namespace}-{deployment['metadata']['name']}"
    assert kube.get("clusterrole", cluster_name) is not None
    assert kube.get("clusterkopfpeering", cluster_name) is not None
    assert k.get("poddisruptionbudget", deployment["metadata"]["name"]) is not None
    config_maps = k.list("configmaps", "grafana_dashboard=1")
    assert len(config_maps) == 1

    release.helm.upgrade(release.name, release.namespace, {"replicaCount": 1})
    assert kube.get("clusterkopfpeering", cluster_name) is None
    assert k.get("poddisruptionbudget", deployment["metadata"]["name"]) is None

    release.helm.uninstall(release.name, release.namespace)
    assert kube.get("clusterrole", cluster_name) is None
    assert kube.get("clusterrolebinding", cluster_name) is None
    # Helm never deletes CRDs: the models keep running after the operator is uninstalled.
    for path in (CHART / "crds").glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            assert kube.get("crd", crd["metadata"]["name"]) is not None


def test_the_apiserver_authorizes_exactly_what_rbac_py_lists(
    install: Install, kube: Kubectl, models_namespace: str
) -> None:
    release = install({"watchNamespaces": [models_namespace], "peering": {"enabled": True}})
    user = username(release.namespace, release.service_account)
    peering_name = f"{release.namespace}-md-modeldeploy"
    permissions = rbac.needed(namespaced=True, peering=True)
    granted = {
        (p.group, p.resource, verb): p.peering_object_only for p in permissions for verb in p.verbs
    }
    resources = {(p.group, p.resource) for p in rbac.PERMISSIONS} | {("", "secrets")}
    checks: list[tuple[str | None, str, str, str]] = []
    expected: list[bool] = []
    for group, resource in sorted(resources):
        cluster_scoped = any(
            p.scope is rbac.Scope.CLUSTER for p in rbac.PERMISSIONS if p.resource == resource
        )
        for verb in ALL_VERBS:
            where = [None] if cluster_scoped else [models_namespace, release.namespace, "default"]
            for namespace in where:
                allowed = (group, resource, verb) in granted and (
                    cluster_scoped or namespace == models_namespace
                )
                # resourceNames-limited rules allow nothing for a request without a name.
                if allowed and granted[(group, resource, verb)]:
                    allowed = False
                checks.append((namespace, group, resource, verb))
                expected.append(allowed)
    answers = access_reviews(kube, user, checks)
    wrong = [check for check, want in zip(checks, expected, strict=True) if answers[check] != want]
    assert not wrong, f"authorizer disagrees with rbac.py on {wrong}"
    # The peering object itself is patchable, by name.
    review = kube.run(
        "auth", "can-i", "patch", f"kopfpeerings.kopf.dev/{peering_name}",
        "-n", models_namespace, f"--as={user}", check=False,
    )  # fmt: skip
    assert review.strip() == "yes"


def test_server_side_apply_of_a_new_object_needs_create_as_well_as_patch(
    install: Install, kube: Kubectl, models_namespace: str, tmp_path: Path
) -> None:
    """Why rbac.py grants `create` on children although the operator only ever PATCHes."""
    release = install({"watchNamespaces": [models_namespace]})
    role_name = f"{release.namespace}-md-modeldeploy"
    models = kube.in_namespace(models_namespace)
    role = models.get("role", role_name)
    assert role is not None
    without_verb(models, role, "services", "create")
    as_operator = Kubectl(release.kubeconfig(tmp_path / "sa.kubeconfig"), models_namespace)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "probe"},
        "spec": {"ports": [{"port": 80}]},
    }
    with pytest.raises(KubectlError, match=r"cannot create resource \"services\""):
        as_operator.apply(service, server_side=True)
    replace_role(models, role)  # create restored: the same apply now succeeds

    def applied() -> bool:
        as_operator.apply(service, server_side=True)
        return True

    eventually(applied, timeout=10, what="server-side apply with create granted")
    assert models.get("service", "probe") is not None


def test_the_operator_as_the_charts_service_account_serves_a_model(
    install: Install,
    kube: Kubectl,
    operator_as: StartOperator,
    models_namespace: str,
) -> None:
    release = install({"watchNamespaces": [models_namespace], "peering": {"enabled": True}})
    user = username(release.namespace, release.service_account)
    offset = AUDIT_LOG.stat().st_size
    operator = operator_as(
        release,
        [models_namespace],
        ("--server-image", SERVER_IMAGE, f"--peering={release.namespace}-md-modeldeploy"),
    )
    models = kube.in_namespace(models_namespace)
    models.apply(model("iris"))

    def ready() -> bool:
        md = models.get("md", "iris")
        status = (md or {}).get("status", {})
        return (
            bool(md)
            and status.get("phase") == "Ready"
            and (
                status.get("observedGeneration") == md["metadata"]["generation"]  # type: ignore[index]
            )
        )

    eventually(ready, timeout=90, what="iris Ready")
    assert operator.probe("/readyz")
    events = audit_events(offset, user, models_namespace)
    assert not denied(events), denied(events)
    log = operator.log()
    assert "403" not in log and "orbidden" not in log and "permissions" not in log, log
    # When this operator is the only one in the cluster (CI), it made every child itself.
    others = [
        e
        for e in audit_events(offset, "kwok-admin", models_namespace)
        if e["userAgent"].startswith("modeldeploy-operator/")
    ]
    if not others:
        written = {(e["objectRef"]["resource"], e["verb"]) for e in events}
        assert {("deployments", "patch"), ("services", "patch")} <= written, written
        assert ("modeldeployments", "patch") in written


@pytest.fixture
def namespaced_release(install: Install, models_namespace: str) -> Iterator[Release]:
    yield install({"watchNamespaces": [models_namespace]})


def test_without_patch_on_deployments_the_operator_gets_403(
    namespaced_release: Release,
    kube: Kubectl,
    operator_as: StartOperator,
    models_namespace: str,
) -> None:
    release = namespaced_release
    user = username(release.namespace, release.service_account)
    models = kube.in_namespace(models_namespace)
    role = models.get("role", f"{release.namespace}-md-modeldeploy")
    assert role is not None
    without_verb(models, role, "deployments", "patch")
    offset = AUDIT_LOG.stat().st_size
    # An image of its own: whatever another operator in the cluster applied, this one's
    # Deployment differs, so it must patch.
    operator = operator_as(
        release, [models_namespace], ("--server-image", "example.org/rbac-probe:1")
    )
    models.apply(model("iris"))

    def forbidden_patch() -> list[str]:
        return [d for d in denied(audit_events(offset, user, models_namespace))
                if d.startswith("patch deployments")]  # fmt: skip

    eventually(forbidden_patch, timeout=60, what="a 403 on patching the Deployment")
    assert f'User "{user}" cannot patch resource "deployments"' in operator.log()
    deployments = models.list("deployments")
    assert all(
        d["spec"]["template"]["spec"]["containers"][0]["image"] != "example.org/rbac-probe:1"
        for d in deployments
    )


def test_without_list_on_pods_the_operator_never_becomes_ready(
    namespaced_release: Release,
    kube: Kubectl,
    operator_as: StartOperator,
    models_namespace: str,
    tmp_path: Path,
) -> None:
    release = namespaced_release
    models = kube.in_namespace(models_namespace)
    role = models.get("role", f"{release.namespace}-md-modeldeploy")
    assert role is not None
    without_verb(models, role, "pods", "list")
    kubeconfig = release.kubeconfig(tmp_path / "sa.kubeconfig")
    operator = NamespacedOperator(kubeconfig, tmp_path / "operator.log", [models_namespace])
    operator.launch()
    try:
        with pytest.raises(RuntimeError, match="not ready"):
            operator.wait_ready(timeout=20)
        user = username(release.namespace, release.service_account)
        assert f'User "{user}" cannot list resource "pods"' in operator.log()
    finally:
        operator.stop()
