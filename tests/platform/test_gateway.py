"""The cluster's Gateway API implementation (Traefik, cluster/platform/gateway.sh) honours the
HTTPRoute the operator writes: at each canary step, the split measured over real requests
through the Gateway to real pods is within 5 points of the declared weight.

The route is the Gateway API router's own (`GatewayApiRouter.route_objects`, what the
reconciler applies), attached to the Gateway modeldeploy-system/web; its backends are echo pods
(tests/support/echo) behind the per-version Services it names, each answering its version.
Echo pods answer every path, `/metrics` included: whatever the Gateway does not forward is the
route's doing, and Traefik answers it 404.
"""

from __future__ import annotations

import http.client
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.rollout.routers import GatewayApiRouter, TrafficSplit

from tests.support.kube import Kubectl, eventually
from tests.support.platform import (
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    echo_backend,
    traefik_api_url,
    traefik_weights,
    without_owner,
)

MODEL = "split"
STABLE, CANARY = "1", "2"
REQUESTS_PER_STEP = 1000
TOLERANCE_POINTS = 5


def model_deployment(namespace: str, hostname: str) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {
                "name": MODEL,
                "namespace": namespace,
                # Never looked up: the route is applied without its owner reference.
                "uid": "4f1c9a52-0000-4000-8000-000000000003",
            },
            "spec": {
                "model": {"format": "sklearn", "version": CANARY, "storageUri": "pvc://m/split"},
                "traffic": {
                    "router": "GatewayAPI",
                    "gatewayRef": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
                    # Its own hostname: other runs' routes share the Gateway.
                    "hostnames": [hostname],
                },
            },
        }
    )


def route_for(md: ModelDeployment, weight: int) -> dict[str, Any]:
    split = TrafficSplit(stable_version=STABLE, canary_version=CANARY, canary_weight=weight)
    [route] = [o for o in GatewayApiRouter().route_objects(md, split) if o["kind"] == "HTTPRoute"]
    return without_owner(route)


def wait_for_weights(api: str, namespace: str, expected: dict[str, int]) -> None:
    """`expected`: the weight of each version."""
    by_service = {naming.track_name(MODEL, v): weight for v, weight in expected.items()}
    eventually(
        lambda: traefik_weights(api, namespace) == by_service,
        timeout=30,
        what=f"Traefik serving the weights {expected}",
    )


def get(gateway: str, hostname: str, path: str) -> tuple[int, str]:
    target = urlsplit(gateway)
    connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": hostname})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def send(gateway: str, hostname: str, count: int) -> Counter[str]:
    """`count` sequential requests on one keep-alive connection: answers by body, errors by
    status."""
    target = urlsplit(gateway)
    connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
    answers: Counter[str] = Counter()
    try:
        for _ in range(count):
            connection.request("GET", "/", headers={"Host": hostname})
            response = connection.getresponse()
            body = response.read().decode()
            answers[body if response.status == 200 else f"HTTP {response.status}"] += 1
    finally:
        connection.close()
    return answers


def test_traefik_splits_traffic_as_the_operators_httproute_declares(
    kube: Kubectl, k: Kubectl, namespace: str, echo_image: str, gateway_url: str
) -> None:
    hostname = f"{MODEL}.{namespace}.test"
    md = model_deployment(namespace, hostname)
    for version in (STABLE, CANARY):
        labels = naming.pod_labels(MODEL, version)
        k.apply(*echo_backend(naming.track_name(MODEL, version), echo_image, version, labels))
    for version in (STABLE, CANARY):
        k.run(
            "rollout", "status", f"deployment/{naming.track_name(MODEL, version)}", "--timeout=120s"
        )
    api = traefik_api_url(kube)

    measured: dict[int, float] = {}
    for weight in (10, 25, 50, 0):
        k.apply(route_for(md, weight))
        expected = {STABLE: 100 - weight, CANARY: weight}
        wait_for_weights(api, namespace, expected)
        answers = send(gateway_url, hostname, REQUESTS_PER_STEP)
        assert set(answers) <= {STABLE, CANARY}, f"errors through the Gateway: {answers}"
        measured[weight] = 100 * answers[CANARY] / REQUESTS_PER_STEP
        print(f"declared canary weight {weight}%: measured {measured[weight]:.1f}% of {answers}")
    assert all(abs(share - weight) <= TOLERANCE_POINTS for weight, share in measured.items()), (
        measured
    )


def test_through_the_gateway_clients_reach_the_inference_paths_and_never_metrics(
    k: Kubectl, namespace: str, echo_image: str, gateway_url: str
) -> None:
    hostname = f"{MODEL}.{namespace}.test"
    md = model_deployment(namespace, hostname)
    name = naming.track_name(MODEL, STABLE)
    k.apply(*echo_backend(name, echo_image, STABLE, naming.pod_labels(MODEL, STABLE)))
    k.run("rollout", "status", f"deployment/{name}", "--timeout=120s")
    split = TrafficSplit(stable_version=STABLE, canary_version=None, canary_weight=0)
    [route] = GatewayApiRouter().route_objects(md, split)
    k.apply(without_owner(route))
    client_calls = (
        "/", "/v1/models/split:predict", "/v2", "/v2/health/ready", "/v2/models/split/infer",
    )  # fmt: skip
    eventually(
        lambda: all(get(gateway_url, hostname, path) == (200, STABLE) for path in client_calls),
        timeout=30,
        what=f"Traefik forwarding {client_calls} to the echo pods",
        retrying=(OSError,),
    )
    # The echo pods answer /metrics with 200 and their counter: only the Gateway says 404.
    for path in ("/metrics", "/v1", "/v2x"):
        status, body = get(gateway_url, hostname, path)
        assert (status, body.strip()) == (404, "404 page not found"), (path, status, body)
