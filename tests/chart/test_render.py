"""The chart as `helm lint` and `helm template` (the real helm) see it: least-privilege RBAC equal
to rbac.py in every mode, a hardened operator Deployment driven by the values, and the optional
objects present exactly when asked for."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from typing import Any

import pytest
import yaml
from modeldeploy_operator import __version__, rbac, settings

from tests.support.helm import CHART, Helm, HelmError, Manifest, Values

RELEASE = "modeldeploy"
NAMESPACE = "modeldeploy-system"
# Every verb a Kubernetes RBAC rule can name for a resource.
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

MODES: dict[str, Values] = {
    "cluster-wide": {},
    "cluster-wide-ha": {"replicaCount": 2},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "namespaced-ha": {"watchNamespaces": ["team-a"], "peering": {"enabled": True}},
    "patterns": {"watchNamespaces": ["team-*", "!team-test"]},
}


def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Iterable[Manifest], kind: str) -> Manifest:
    [found] = of_kind(manifests, kind)
    return found


def container(manifests: list[Manifest]) -> dict[str, Any]:
    [operator] = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def grants(rules: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def needed(permissions: Iterable[rbac.Permission]) -> set[tuple[str, str, str]]:
    return {(p.group, p.resource, verb) for p in permissions for verb in p.verbs}


@pytest.mark.parametrize(
    "values",
    [None, *MODES.values(), {"metrics": {"serviceMonitor": {"enabled": True}}}],
    ids=["defaults", *MODES, "service-monitor"],
)
def test_helm_lint_passes_strict(helm: Helm, values: Values | None) -> None:
    out = helm.run("lint", "--strict", str(CHART), values=values)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("mode", MODES)
def test_rbac_grants_exactly_rbac_py_with_no_wildcards(helm: Helm, mode: str) -> None:
    values = MODES[mode]
    manifests = helm.template(values)
    namespaced = bool(values.get("watchNamespaces"))
    peering = values.get("replicaCount", 1) > 1 or values.get("peering", {}).get("enabled", False)
    permissions = rbac.needed(namespaced=namespaced, peering=peering)

    roles = of_kind(manifests, "ClusterRole") + of_kind(manifests, "Role")
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            if "secrets" in rule["resources"]:
                # The MLflow credentials a source names, read by name only (rbac.py).
                assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"], rule

    [cluster_role] = of_kind(manifests, "ClusterRole")
    cluster_scoped = needed(p for p in permissions if p.scope is rbac.Scope.CLUSTER)
    watched = needed(p for p in permissions if p.scope is rbac.Scope.WATCHED)
    patterns = any(set("*?!") & set(n) for n in values.get("watchNamespaces", []))
    if namespaced and not patterns:
        assert grants(cluster_role["rules"]) == cluster_scoped
        by_namespace = {r["metadata"]["namespace"]: r for r in of_kind(manifests, "Role")}
        assert set(by_namespace) == set(values["watchNamespaces"])
        for role in by_namespace.values():
            assert grants(role["rules"]) == watched
    else:
        assert not of_kind(manifests, "Role")
        assert grants(cluster_role["rules"]) == cluster_scoped | watched


@pytest.mark.parametrize("mode", MODES)
def test_bindings_give_the_roles_to_the_operators_service_account(helm: Helm, mode: str) -> None:
    manifests = helm.template(MODES[mode])
    account = one(manifests, "ServiceAccount")["metadata"]["name"]
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == account
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"])
             for r in of_kind(manifests, "ClusterRole") + of_kind(manifests, "Role")}  # fmt: skip
    bindings = of_kind(manifests, "ClusterRoleBinding") + of_kind(manifests, "RoleBinding")
    assert len(bindings) == len(roles)
    for binding in bindings:
        ref = binding["roleRef"]
        assert (ref["kind"], binding["metadata"].get("namespace"), ref["name"]) in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


def test_peering_with_namespace_patterns_fails_with_the_reason(helm: Helm) -> None:
    with pytest.raises(HelmError, match=r"peering .* needs exact watchNamespaces"):
        helm.template(MODES["patterns"] | {"replicaCount": 2})


def test_peering_patches_only_the_releases_peering_object(helm: Helm) -> None:
    for values, kind in ((MODES["cluster-wide-ha"], "ClusterKopfPeering"),
                         (MODES["namespaced-ha"], "KopfPeering")):  # fmt: skip
        manifests = helm.template(values)
        [peering] = of_kind(manifests, kind)
        name = peering["metadata"]["name"]
        assert f"--peering={name}" in container(manifests)["args"]
        rules = [r for role in of_kind(manifests, "ClusterRole") + of_kind(manifests, "Role")
                 for r in role["rules"] if "patch" in r["verbs"]
                 and r["apiGroups"] == [rbac.PEERING_GROUP]]  # fmt: skip
        assert rules and all(r["resourceNames"] == [name] for r in rules)


def test_every_rule_says_why_in_a_comment(helm: Helm) -> None:
    text = helm.template_text(MODES["namespaced-ha"])
    lines = text.splitlines()
    rule_lines = [i for i, line in enumerate(lines) if line.startswith("- apiGroups:")]
    assert len(rule_lines) >= len(rbac.PERMISSIONS) - 2
    for i in rule_lines:
        comment: list[str] = []
        j = i - 1
        while lines[j].startswith("# "):
            comment.insert(0, lines[j][2:])
            j -= 1
        assert " — " in " ".join(comment), f"rule without a reason: {lines[i : i + 3]}"


def test_the_operator_pod_is_hardened(helm: Helm) -> None:
    manifests = helm.template()
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(manifests)
    security = operator["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert operator["resources"]["requests"] and operator["resources"]["limits"]["memory"]
    # The one writable path is an emptyDir.
    [mount] = operator["volumeMounts"]
    [volume] = pod["volumes"]
    assert mount["name"] == volume["name"] and "emptyDir" in volume


def test_probes_use_the_operators_health_endpoints_on_the_metrics_port(helm: Helm) -> None:
    operator = container(helm.template({"metrics": {"port": 9100}}))
    assert operator["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert operator["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "--metrics-port=9100" in operator["args"]


def test_arguments_follow_the_values(helm: Helm) -> None:
    values = {
        "watchNamespaces": ["team-a", "team-b"],
        "serverImage": {"repository": "registry.example.com/ml/server", "tag": "7"},
        "prometheusUrl": "http://prom.monitoring:9090",
        "logFormat": "text",
        "workers": 3,
        "modelMonitorLabels": {"release": "kps"},
    }
    operator = container(helm.template(values))
    assert operator["command"] == ["modeldeploy", "operator"]
    assert operator["args"] == [
        "--namespace=team-a",
        "--namespace=team-b",
        "--server-image=registry.example.com/ml/server:7",
        "--prometheus-url=http://prom.monitoring:9090",
        "--log-format=text",
        "--metrics-port=8080",
        "--workers=3",
        "--service-monitor-label=release=kps",
    ]
    defaults = container(helm.template())["args"]
    assert "--all-namespaces" in defaults and not any(a.startswith("--peering") for a in defaults)


def test_the_arguments_are_accepted_by_the_operators_own_parser(helm: Helm) -> None:
    import argparse

    from modeldeploy_operator import settings

    operator = container(helm.template(MODES["namespaced-ha"] | {"modelMonitorLabels": {"a": "b"}}))
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    parsed = settings.from_arguments(parser.parse_args(operator["args"]))
    assert parsed.namespaces == ("team-a",)
    assert parsed.peering and parsed.service_monitor_labels == {"a": "b"}


def test_image_tags_follow_the_package_version(helm: Helm) -> None:
    operator = container(helm.template())
    assert operator["image"] == f"ghcr.io/modeldeploy/modeldeploy-operator:{__version__}"
    assert (
        f"--server-image=ghcr.io/modeldeploy/modeldeploy-server:{__version__}" in operator["args"]
    )
    digest = "sha256:" + "a" * 64
    pinned = container(helm.template({"image": {"tag": "x", "digest": digest}}))
    assert pinned["image"] == f"ghcr.io/modeldeploy/modeldeploy-operator@{digest}"


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_high_availability_follows_the_replica_count(helm: Helm, replicas: int) -> None:
    manifests = helm.template({"replicaCount": replicas})
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    affinity = deployment["spec"]["template"]["spec"].get("affinity")
    ha = replicas > 1
    assert bool(affinity) == ha
    assert bool(of_kind(manifests, "PodDisruptionBudget")) == ha
    assert bool(of_kind(manifests, "ClusterKopfPeering")) == ha
    assert any(a.startswith("--peering=") for a in container(manifests)["args"]) == ha
    if ha:
        term = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_the_metrics_service_and_service_monitor_select_the_operator(helm: Helm) -> None:
    assert not of_kind(helm.template(), "ServiceMonitor")
    monitor_values = {"enabled": True, "labels": {"release": "kps"}, "interval": "15s"}
    manifests = helm.template({"metrics": {"serviceMonitor": monitor_values}})
    service = one(manifests, "Service")
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "metrics"
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s" and endpoint["honorLabels"] is True


def test_the_dashboard_config_map_carries_the_dashboard_for_the_grafana_sidecar(
    helm: Helm,
) -> None:
    config_map = one(helm.template(), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".json")
    assert json.loads(text) == json.loads((CHART / "files" / "dashboard.json").read_text())
    elsewhere = one(helm.template({"grafanaDashboard": {"namespace": "grafana"}}), "ConfigMap")
    assert elsewhere["metadata"]["namespace"] == "grafana"
    assert not of_kind(helm.template({"grafanaDashboard": {"enabled": False}}), "ConfigMap")


def test_cluster_scoped_names_include_the_release_namespace(helm: Helm) -> None:
    first = helm.template(namespace="team-a")
    second = helm.template(namespace="team-b")
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert one(first, kind)["metadata"]["name"] != one(second, kind)["metadata"]["name"]


def test_every_object_is_labelled_as_part_of_the_release(helm: Helm) -> None:
    for manifest in helm.template(MODES["namespaced-ha"]):
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, manifest["kind"]
        assert labels["app.kubernetes.io/version"] == __version__
        assert re.fullmatch(r"modeldeploy-[0-9.]+", labels["helm.sh/chart"])


def test_the_chart_crds_directory_holds_the_crds(helm: Helm) -> None:
    names = set()
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] == "CustomResourceDefinition"
            names.add(doc["metadata"]["name"])
    assert names == {
        "modeldeployments.modeldeploy.dev",
        "retrainingpolicies.modeldeploy.dev",
        "retrainingruns.modeldeploy.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


def test_the_alertmanager_receiver_mounts_its_token_and_has_its_own_service(helm: Helm) -> None:
    default = helm.template()
    assert not any(a.startswith("--alertmanager") for a in container(default)["args"])
    receiver = {"enabled": True, "tokenSecret": {"name": "am-token", "key": "bearer"}}
    manifests = helm.template({"alertmanagerReceiver": receiver})
    operator = container(manifests)
    assert "--alertmanager-token-file=/etc/modeldeploy/alertmanager/token" in operator["args"]
    assert "--alertmanager-port=8081" in operator["args"]
    [mount] = [m for m in operator["volumeMounts"] if m["name"] == "alertmanager-token"]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "alertmanager-token"]
    assert volume["secret"] == {
        "secretName": "am-token",
        "items": [{"key": "bearer", "path": "token"}],
    }
    assert mount["readOnly"] is True and mount["mountPath"] == "/etc/modeldeploy/alertmanager"
    [service] = [
        s for s in of_kind(manifests, "Service") if s["metadata"]["name"].endswith("-alertmanager")
    ]
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "alertmanager" and port["port"] == 8081
    assert any(p["name"] == "alertmanager" for p in operator["ports"])
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    parsed = settings.from_arguments(parser.parse_args(operator["args"]))
    assert str(parsed.alertmanager_token_file) == "/etc/modeldeploy/alertmanager/token"
    with pytest.raises(HelmError, match=r"tokenSecret\.name is required"):
        helm.template({"alertmanagerReceiver": {"enabled": True}})
