"""The platform around the test cluster (cluster/platform/): where its Gateway and its
Prometheus answer, and real backend pods (the echo image, tests/support/echo) on the real node.

Every lookup fails loudly with the command that provides the missing piece: these tests never
skip because the platform is absent.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any, Final

from modeldeploy_operator.builders.deployment import PORT_NAME
from modeldeploy_operator.builders.service import SERVICE_PORT

from tests.support.kube import Kubectl, Manifest, eventually
from tests.support.operator_process import ROOT

GATEWAY_NAMESPACE: Final = "modeldeploy-system"
GATEWAY_NAME: Final = "web"
MONITORING_NAMESPACE: Final = "monitoring"
PROMETHEUS_SERVICE: Final = "prometheus"
ECHO_PORT: Final = 8080
STARTED_BY: Final = "cluster/platform/up.sh (run by cluster/up.sh)"


def gateway_url(kube: Kubectl) -> str:
    """The HTTP listener of the Gateway modeldeploy-system/web, from its status."""
    gateway = kube.in_namespace(GATEWAY_NAMESPACE).get("gateway", GATEWAY_NAME)
    assert gateway is not None, f"no Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME}: {STARTED_BY}"
    status = gateway.get("status", {})
    programmed = [c for c in status.get("conditions", []) if c["type"] == "Programmed"]
    assert programmed and programmed[0]["status"] == "True", (
        f"Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} is not programmed (is Traefik running? "
        f"{STARTED_BY}): {status}"
    )
    address = status["addresses"][0]["value"]
    [listener] = gateway["spec"]["listeners"]
    return f"http://{address}:{listener['port']}"


def traefik_api_url(kube: Kubectl) -> str:
    """Traefik's API (its runtime configuration), published by cluster/platform/gateway.sh."""
    config = kube.in_namespace(GATEWAY_NAMESPACE).get("configmap", "traefik")
    assert config is not None, f"no ConfigMap {GATEWAY_NAMESPACE}/traefik: {STARTED_BY}"
    return str(config["data"]["api-url"])


def traefik_weights(api: str, namespace: str) -> dict[str, int]:
    """The weights Traefik serves to this namespace's Services (its runtime configuration), by
    Service name; empty when it serves none of them through a weighted backend."""
    services = json.loads(http_get(api + "/api/http/services"))
    # Traefik names a Gateway API backend `<namespace>-<service>-<port name>-<port>`.
    prefix, suffix = f"{namespace}-", f"-{PORT_NAME}-{SERVICE_PORT}"
    return {
        child["name"].removeprefix(prefix).removesuffix(suffix): child["weight"]
        for service in services
        for child in service.get("weighted", {}).get("services", [])
        if child["name"].startswith(prefix) and child["name"].endswith(suffix)
    }


# The scrape job of Traefik's metrics in the platform's Prometheus (cluster/platform/monitoring.sh).
TRAEFIK_SCRAPE_JOB: Final = "traefik-metrics"


def traefik_route_requests_query(namespace: str, route: str) -> str:
    """The request rate Traefik counts for the HTTPRoute `namespace/route` on the Gateway
    modeldeploy-system/web, 503s for a backend without pods included (PromQL).

    Traefik (pkg/provider/kubernetes/gateway) names a router
    `httproute-<namespace>-<route>-gw-<gateway namespace>-<gateway>-ep-<entry point>-<rule>-<hash
    of the match>@kubernetesgateway`, one per match of a rule: the prefix takes them all.
    """
    router = f"httproute-{namespace}-{route}-gw-{GATEWAY_NAMESPACE}-{GATEWAY_NAME}-ep-.+"
    return f'sum(rate(traefik_router_requests_total{{router=~"{router}"}}[1m]))'


def prometheus_url(kube: Kubectl) -> str:
    """The Prometheus the Prometheus Operator runs, through its Service's cluster IP."""
    service = kube.in_namespace(MONITORING_NAMESPACE).get("service", PROMETHEUS_SERVICE)
    assert service is not None, f"no Service {MONITORING_NAMESPACE}/prometheus: {STARTED_BY}"
    url = f"http://{service['spec']['clusterIP']}:9090"
    eventually(
        lambda: http_get(url + "/-/ready").startswith("Prometheus Server is Ready"),
        timeout=30,
        what=f"Prometheus ready at {url} ({STARTED_BY})",
    )
    return url


def http_get(url: str, host: str | None = None, timeout: float = 10) -> str:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return str(resp.read().decode())


def prometheus_api(url: str, path: str) -> Any:
    body = json.loads(http_get(url + path))
    assert body["status"] == "success", body
    return body["data"]


def echo_image(kube: Kubectl) -> str:
    """The echo backend's image, present on the real node."""
    ref = subprocess.run(
        [str(ROOT / "cluster" / "platform" / "images.sh"), "ref", "echo"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    nodes = kube.list("nodes", "type!=kwok")
    assert nodes, "the cluster has no real node: cluster/up.sh starts one"

    def on_a_real_node() -> bool:
        images = (
            i for n in kube.list("nodes", "type!=kwok") for i in n["status"].get("images", [])
        )
        return any(ref in image["names"] for image in images)

    # The kubelet reports its images with its node status, at most a minute late.
    eventually(on_a_real_node, timeout=90, what=f"{ref} on the real node ({STARTED_BY} loads it)")
    return ref


def echo_backend(
    name: str, image: str, message: str, labels: dict[str, str], replicas: int = 1
) -> list[Manifest]:
    """A Deployment of echo pods answering `message`, and a Service `name` on port 80."""
    selector = {"app": name}
    pod_labels = {**labels, **selector}
    container = {
        "name": "echo",
        "image": image,
        "env": [{"name": "MESSAGE", "value": message}],
        # The operator's serving container names its port the same (builders.deployment).
        "ports": [{"name": "http", "containerPort": ECHO_PORT}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "http"}, "periodSeconds": 1},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {"containers": [container], "automountServiceAccountToken": False},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    ]


def without_owner(manifest: Manifest) -> Manifest:
    """A child manifest the operator writes, applied without its ModelDeployment: the owner
    reference would name an object that does not exist, and the garbage collector deletes the
    dependents of a missing owner."""
    metadata = {k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"}
    return {**manifest, "metadata": metadata}
