"""The contract between the operator and the server (`modeldeploy_serving.contract`), checked
from both ends: what the operator's builders put in a serving pod is what `modeldeploy serve` and
`modeldeploy fetch` read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext, TrackPlan
from modeldeploy_operator.builders.deployment import build_deployment
from modeldeploy_operator.rollout.routers import GatewayApiRouter, TrafficSplit
from modeldeploy_serving import contract
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.errors import NotFound
from modeldeploy_serving.fetch.local import LocalSource
from modeldeploy_serving.fetch.resolve import resolve
from modeldeploy_serving.fetch.source import FetchOptions, artifact_name
from modeldeploy_serving.metrics import ServingMetrics
from modeldeploy_serving.model import locate_artifact
from modeldeploy_serving.settings import ServerSettings, parse_settings


def model_deployment(storage_uri: str, **spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "apiVersion": "modeldeploy.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "iris", "namespace": "models", "uid": "u-1", "generation": 1},
            "spec": {
                "model": {"format": "sklearn", "version": "2.1", "storageUri": storage_uri},
                **spec,
            },
        }
    )


def deployment(storage_uri: str) -> dict[str, Any]:
    md = model_deployment(storage_uri)
    plan = TrackPlan(track="stable", serving=md.spec.serving(), replicas=1, weight=100)
    return build_deployment(md, plan, BuildContext(server_image="server:test"))


def containers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = manifest["spec"]["template"]["spec"]
    return {c["name"]: c for c in [*pod.get("initContainers", []), *pod["containers"]]}


def model_dir_arg(server: dict[str, Any]) -> str:
    args: list[str] = server["args"]
    return args[args.index("--model-dir") + 1]


def test_the_server_reads_its_name_and_version_from_the_environment_the_operator_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = containers(deployment("s3://models/iris/2/model.joblib"))["server"]
    for var in server["env"]:
        monkeypatch.setenv(var["name"], var["value"])
    settings = parse_settings(["--model-dir", model_dir_arg(server)])  # no --name, --version
    assert (settings.name, settings.version) == ("iris", "2.1")


def test_the_server_listens_where_the_operator_probes() -> None:
    server = containers(deployment("s3://models/iris/2/model.joblib"))["server"]
    settings = parse_settings(["--model-dir", "/m", "--name", "iris"])
    assert [p["containerPort"] for p in server["ports"]] == [settings.port]


def test_a_fetched_artifact_lands_where_the_server_reads_it(tmp_path: Path) -> None:
    pod = containers(deployment("s3://models/iris/2/model.skops"))
    assert pod["fetch"]["args"][2] == model_dir_arg(pod["server"])
    for name in ("iris.joblib", "iris.skops", "iris.pkl"):
        directory = tmp_path / name
        directory.mkdir()
        (directory / artifact_name(name)).write_bytes(b"")
        assert locate_artifact(directory).name == artifact_name(name)


@pytest.mark.parametrize("suffix", contract.ARTIFACT_SUFFIXES)
def test_a_claim_is_mounted_where_fetch_looks_and_its_file_is_the_one_the_server_finds(
    suffix: str, tmp_path: Path
) -> None:
    uri = f"pvc://models/iris/2/clf{suffix}"
    server = containers(deployment(uri))["server"]
    # The operator serves the file in place from its directory under the claim's mount ...
    model_dir = Path(model_dir_arg(server))
    source = resolve(uri, FetchOptions())
    # ... which is where `modeldeploy fetch` finds the same URI by default,
    assert source == LocalSource(model_dir / f"clf{suffix}")
    # ... and the server takes a file with that suffix for the model.
    local = tmp_path / model_dir.relative_to("/")
    local.mkdir(parents=True)
    (local / f"clf{suffix}").write_bytes(b"")
    assert locate_artifact(local).name == f"clf{suffix}"


def test_the_operator_reads_the_contract_without_loading_the_server() -> None:
    """The operator image has no scikit-learn or numpy: its modules may import the contract,
    and nothing else of the serving package."""
    probe = (
        "import sys, modeldeploy_operator.cli, modeldeploy_operator.controller, "
        "modeldeploy_operator.plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'modeldeploy_serving', 'numpy', 'sklearn', 'joblib'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "['modeldeploy_serving', 'modeldeploy_serving.contract']"


# What the server answers (rest/routes.py) and what a client of KServe's V1 and V2 protocols
# calls; and paths beside them that a prefix match could catch by mistake.
CLIENT_CALLS = (
    "/", "/v1/models", "/v1/models/iris", "/v1/models/iris:predict",
    "/v2", "/v2/", "/v2/health/live", "/v2/health/ready", "/v2/models/iris",
    "/v2/models/iris/ready", "/v2/models/iris/infer", "/v2/models/iris/versions/2.1/infer",
)  # fmt: skip
NOT_FOR_CLIENTS = ("/metrics", "/metrics/", "/metricsx", "/v1", "/v1/modelsx", "/v2x", "/x")


def gateway_routes(matches: list[dict[str, Any]], path: str) -> bool:
    """Gateway API path matching: `Exact`, or `PathPrefix` on whole path segments."""
    for match in matches:
        kind, value = match["path"]["type"], match["path"]["value"]
        if kind == "Exact" and path == value:
            return True
        if kind == "PathPrefix" and (path == value or path.startswith(value.rstrip("/") + "/")):
            return True
    return False


def test_the_gateway_routes_every_client_call_the_server_answers_and_never_its_metrics(
    tmp_path: Path,
) -> None:
    md = model_deployment(
        "s3://models/iris/2/model.joblib",
        traffic={"router": "GatewayAPI", "gatewayRef": {"name": "web"}},
    )
    (httproute,) = GatewayApiRouter().route_objects(md, TrafficSplit("2.1", None, 0))
    (rule,) = httproute["spec"]["rules"]
    routes = ServingApp(
        ServerSettings(model_dir=tmp_path, name="iris"), ServingMetrics("iris", "2.1")
    ).routes

    def served(path: str) -> bool:
        try:
            routes.route(path)
        except NotFound:
            return False
        return True

    assert [p for p in CLIENT_CALLS if not (served(p) and gateway_routes(rule["matches"], p))] == []
    assert served("/metrics")
    assert [p for p in NOT_FOR_CLIENTS if gateway_routes(rule["matches"], p)] == []
