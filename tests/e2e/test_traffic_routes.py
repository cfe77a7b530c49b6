"""The Gateway API router's HTTPRoute against the real HTTPRoute CRD (Gateway API v1.4 standard
channel, installed with the cluster): accepted by its schema and CEL rules at every step, and
stored as written — weights, the 0 weight and the mirror percent survive defaulting and pruning.

Server-side apply in dry-run mode, as the operator's field manager: nothing is persisted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.rollout.routers import GatewayApiRouter, TrafficSplit

from tests.support.kube import Kubectl

# Never looked up: the apiserver does not check that an owner exists, and nothing is persisted.
OWNER_UID = "4f1c9a52-0000-4000-8000-000000000001"


def model_deployment(namespace: str) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {
                "name": "iris",
                "namespace": namespace,
                "uid": "4f1c9a52-0000-4000-8000-000000000001",
            },
            "spec": {
                "model": {"format": "sklearn", "version": "2", "storageUri": "pvc://m/iris/2"},
                "traffic": {
                    "gatewayRef": {"name": "web", "namespace": "gateways", "sectionName": "http"},
                    "hostnames": ["iris.example.com"],
                    "mirrorPercent": 20,
                },
            },
        }
    )


def dry_run(kube: Kubectl, manifest: dict[str, Any]) -> dict[str, Any]:
    out = kube.run(
        "apply", "--server-side", "--dry-run=server", "--field-manager=modeldeploy",
        "-o", "json", "-f", "-", stdin=json.dumps(manifest),
    )  # fmt: skip
    return dict(json.loads(out))


@pytest.mark.parametrize(
    ("canary", "weight"), [(None, 0), ("2", 0), ("2", 10), ("2", 50), ("2", 100)]
)
def test_the_httproute_is_stored_as_written(
    kube: Kubectl, namespace: str, canary: str | None, weight: int
) -> None:
    if kube.get("crd", "httproutes.gateway.networking.k8s.io") is None:
        pytest.skip("the Gateway API CRDs are not installed in this cluster")
    md = model_deployment(namespace)
    split = TrafficSplit("1", canary, weight, mirror_percent=20)
    (route,) = GatewayApiRouter().route_objects(md, split)
    stored = dry_run(kube.in_namespace(namespace), route)
    assert stored["spec"]["parentRefs"] == route["spec"]["parentRefs"]
    assert stored["spec"]["hostnames"] == ["iris.example.com"]
    (rule,) = stored["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [
        (b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]
    ]
    assert rule["matches"] == route["spec"]["rules"][0]["matches"]
    mirrors = [f["requestMirror"] for f in rule.get("filters", [])]
    if canary is not None and weight < 100:
        assert mirrors == [
            {"backendRef": {"group": "", "kind": "Service", "name": "iris-v2", "port": 80},
             "percent": 20}
        ]  # fmt: skip
    else:
        assert mirrors == []
