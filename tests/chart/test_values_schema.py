"""values.schema.json as helm applies it: bad values fail before anything reaches the cluster,
with a message naming the key; good values pass."""

from __future__ import annotations

import pytest

from tests.support.helm import CHART, Helm, HelmError, Values

BAD: dict[str, tuple[Values, str]] = {
    "unknown-key": ({"replicas": 2}, "replicas"),
    "typo-nested": ({"metrics": {"prot": 9090}}, "prot"),
    "zero-replicas": ({"replicaCount": 0}, "/replicaCount"),
    "too-many-replicas": ({"replicaCount": 50}, "/replicaCount"),
    "replicas-as-string": ({"replicaCount": "2"}, "/replicaCount"),
    "namespace-not-dns": ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    "namespace-twice": ({"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
    "namespace-regex": ({"watchNamespaces": ["team-.+"]}, "/watchNamespaces/0"),
    "tag-with-colon": ({"image": {"tag": "v1:latest"}}, "/image/tag"),
    "digest-not-sha256": ({"image": {"digest": "md5:abc"}}, "/image/digest"),
    "pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "prometheus-not-http": ({"prometheusUrl": "prometheus:9090"}, "/prometheusUrl"),
    "log-format": ({"logFormat": "xml"}, "/logFormat"),
    "workers-zero": ({"workers": 0}, "/workers"),
    "privileged-port": ({"metrics": {"port": 80}}, "/metrics/port"),
    "scrape-interval": (
        {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}},
        "/metrics/serviceMonitor/interval",
    ),
    "cpu-quantity": ({"resources": {"requests": {"cpu": "lots"}}}, "/resources/requests/cpu"),
    "label-value": (
        {"grafanaDashboard": {"labels": {"grafana_dashboard": "yes please"}}},
        "/grafanaDashboard/labels",
    ),
    "peering-name": ({"peering": {"name": "Not A Name"}}, "/peering/name"),
    "rbac-not-bool": ({"rbac": {"create": "yes"}}, "/rbac/create"),
}

GOOD: dict[str, Values] = {
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "namespace-patterns": {"watchNamespaces": ["team-*", "!team-test", "ml-?"]},
    "ha": {"replicaCount": 3, "peering": {"name": "models.example.com"}},
    "pinned": {"image": {"digest": "sha256:" + "0" * 64}, "serverImage": {"tag": "1.2.3"}},
    "resources": {"resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {}}},
    "monitoring": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
        "modelMonitorLabels": {"release": "kps"},
        "grafanaDashboard": {"namespace": "grafana", "annotations": {"folder": "ML"}},
    },
    "global": {"global": {"imageRegistry": "mirror.example.com"}},
}


@pytest.mark.parametrize("case", BAD)
def test_bad_values_fail_at_install_naming_the_key(helm: Helm, case: str) -> None:
    values, where = BAD[case]
    with pytest.raises(HelmError) as failure:
        helm.template(values)
    message = failure.value.stderr
    assert "values don't meet the specifications of the schema" in message
    assert where in message, message


@pytest.mark.parametrize("case", GOOD)
def test_good_values_render(helm: Helm, case: str) -> None:
    assert helm.template(GOOD[case])


def test_helm_install_against_the_cluster_refuses_bad_values(cluster_helm: Helm) -> None:
    """Not only `template`: `install` validates the same way, before it sends anything."""
    with pytest.raises(HelmError) as failure:
        cluster_helm.run(
            "install", "schema-check", str(CHART), "--namespace", "default", "--dry-run=server",
            values={"replicaCount": -1},
        )  # fmt: skip
    assert "/replicaCount" in failure.value.stderr
