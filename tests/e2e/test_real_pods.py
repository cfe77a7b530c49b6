"""Real pods: the example a user applies first, on the local cluster's real node (cluster/node/),
running the server image `make images` built from this tree. Nothing here is faked: the image
runs, the readiness probes are the kubelet's, the artifact crosses the pod network from the
example's model store, and the prediction crosses the model's Service (kube-proxy's rules, from
this machine to the Service's cluster IP).
"""

from __future__ import annotations

import io
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import joblib
import pytest
import yaml
from sklearn.datasets import load_iris

from tests.support.images import SERVER_IMAGE
from tests.support.kube import Kubectl, eventually
from tests.support.models import wait_ready
from tests.support.operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "iris.yaml"
# The image the example names; this tree's build stands in for it.
PUBLISHED_SERVER_IMAGE = "ghcr.io/modeldeploy/modeldeploy-server:"


def _example(image: str) -> list[dict[str, Any]]:
    documents = [doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc]
    for doc in documents:
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container["image"].startswith(PUBLISHED_SERVER_IMAGE):
                    container["image"] = image
    return documents


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return dict(json.loads(resp.read()))


def test_the_kubelet_refuses_anonymous_requests_and_serves_the_apiserver(
    kube: Kubectl, real_node: str
) -> None:
    node = kube.get("node", real_node) or {}
    [address] = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"https://{address}:{port}/pods", timeout=10, context=unverified)
    assert refused.value.code == 401
    # The apiserver's own requests (logs, exec, proxy) carry a client certificate of the
    # cluster's CA and are authorized by the apiserver (webhook).
    assert kube.run("get", "--raw", f"/api/v1/nodes/{real_node}/proxy/healthz") == "ok"


@pytest.mark.usefixtures("cluster_dns")
def test_the_iris_example_serves_predictions_from_real_pods(
    k: Kubectl, operator: OperatorProcess, real_node: str
) -> None:
    k.apply(*_example(SERVER_IMAGE))
    wait_ready(k, "iris", timeout=300)

    pods = k.list("pods", "modeldeploy.dev/model=iris")
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == real_node
        assert [c["image"] for c in pod["spec"]["containers"]] == [SERVER_IMAGE]
        # (The status names the image by any of its tags: the build is also tagged <version>.)
        [server] = pod["status"]["containerStatuses"]
        assert server["ready"]
        assert "running" in server["state"]
        [fetch] = pod["status"]["initContainerStatuses"]
        assert fetch["state"]["terminated"]["exitCode"] == 0
    # The kubelet serves the containers' logs to the apiserver.
    assert "iris-model-store" in k.run("logs", pods[0]["metadata"]["name"], "-c", "fetch")

    # The artifact the pods fetched, loaded here: the reference the answers must equal.
    store = k.get("service", "iris-model-store") or {}
    store_url = f"http://{store['spec']['clusterIP']}/iris/1/model.joblib"
    with urllib.request.urlopen(store_url, timeout=10) as resp:
        model = joblib.load(io.BytesIO(resp.read()))
    features, _ = load_iris(return_X_y=True)

    service = k.get("service", "iris") or {}
    port = service["spec"]["ports"][0]["port"]
    url = f"http://{service['spec']['clusterIP']}:{port}/v1/models/iris:predict"
    answer = eventually(
        lambda: _post(url, {"instances": features.tolist()}),
        timeout=30,
        what="an answer through the iris Service",
        # Ready pods reach kube-proxy's rules a moment later: until then the Service refuses.
        retrying=(urllib.error.URLError,),
    )
    assert answer["predictions"] == model.predict(features).tolist()
