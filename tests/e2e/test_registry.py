"""Registry-driven rollouts on the real control plane against a real `mlflow server` (SQLite,
artifacts proxied over HTTP, on 127.0.0.1 beside the operator): the operator follows an alias,
pins what it resolved on the children, starts a canary when the alias moves, and keeps
everything when the registry goes away. Pods run on the fake nodes (nothing fetches)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from modeldeploy_operator.local_mlflow import MlflowServer

from tests.e2e.conftest import CRD
from tests.support.failing_prometheus import failing_prometheus
from tests.support.kube import Kubectl, eventually
from tests.support.models import condition, model, wait_ready
from tests.support.operator_process import OperatorProcess

POLL_SECONDS = 5
POLL = f"{POLL_SECONDS}s"
ROLLOUT = {"steps": [50], "stepInterval": "30s"}


@pytest.fixture(autouse=True)
def this_trees_crd(operator: OperatorProcess, kube: Kubectl) -> None:
    """Re-applied before each test: on a shared cluster another run's session applies its own
    CRD, and one older than spec.model.source would refuse these manifests."""
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.dev")


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def following(
    name: str, registry: MlflowServer, registered: str, rollout: dict[str, Any] = ROLLOUT
) -> dict[str, Any]:
    body = model(name, rollout=rollout, replicas=1)
    body["spec"]["model"] = {
        "format": "sklearn",
        "source": {
            "mlflow": {
                "trackingUri": registry.url,
                "registeredModel": registered,
                "follow": {"alias": "champion"},
                "pollInterval": POLL,
            }
        },
    }
    return body


def model_file_digest(url: str) -> str:
    return hashlib.sha256(httpx.get(url).content).hexdigest()


def deployment_args(k: Kubectl, name: str) -> tuple[list[str], list[str]]:
    deployment = k.get("deployment", name)
    assert deployment is not None, name
    pod = deployment["spec"]["template"]["spec"]
    return pod["initContainers"][0]["args"], pod["containers"][0]["args"]


def test_an_alias_move_starts_a_canary_pinned_to_the_new_version(
    operator: OperatorProcess, k: Kubectl, mlflow: MlflowServer
) -> None:
    registered = f"{k.namespace}-iris"
    mlflow.register(registered, 2)
    mlflow.set_alias(registered, "champion", "1")
    k.apply(following("follow", mlflow, registered))
    md = wait_ready(k, "follow", timeout=90)
    resolved = md["status"]["resolved"]
    assert (resolved["alias"], resolved["version"]) == ("champion", "1")
    assert resolved["sha256"] == model_file_digest(resolved["modelFileUri"])
    fetch_args, _ = deployment_args(k, "follow-v1")
    assert fetch_args[1] == resolved["modelFileUri"] and "@" not in fetch_args[1]

    moved = time.monotonic()
    mlflow.set_alias(registered, "champion", "2")

    def canary() -> dict[str, Any] | None:
        found = k.get("md", "follow")
        return found if found and found["status"].get("canaryVersion") == "2" else None

    md = eventually(canary, timeout=90, what="a canary of version 2")
    print(f"alias moved → canaryVersion 2 in status: {time.monotonic() - moved:.1f}s (poll {POLL})")
    resolved = md["status"]["resolved"]
    assert resolved["version"] == "2"
    assert resolved["sha256"] == model_file_digest(resolved["modelFileUri"])
    fetch_args, server_args = deployment_args(k, "follow-v2")
    assert fetch_args[1] == resolved["modelFileUri"]
    assert fetch_args[-2:] == server_args[-2:] == ["--sha256", resolved["sha256"]]
    assert md["status"]["stableVersion"] == "1"
    assert k.get("deployment", "follow-v1") is not None
    assert condition(md, "InSyncWithRegistry")["reason"] == "RollingOut"
    assert "source" in md["spec"]["model"] and "version" not in md["spec"]["model"]


def test_mlflow_stopped_tears_nothing_down_and_the_condition_says_why(
    operator: OperatorProcess, k: Kubectl, mlflow: MlflowServer
) -> None:
    registered = f"{k.namespace}-down"
    mlflow.register(registered, 1)
    mlflow.set_alias(registered, "champion", "1")
    k.apply(following("down", mlflow, registered))
    wait_ready(k, "down", timeout=90)
    before = {d["metadata"]["name"] for d in k.list("deployments")}
    mlflow.stop()
    try:

        def unreachable() -> dict[str, Any] | None:
            md = k.get("md", "down")
            reachable = condition(md, "SourceReachable")
            return reachable if reachable.get("status") == "False" else None

        reachable = eventually(unreachable, timeout=60, what="SourceReachable False")
        assert reachable["reason"] == "RegistryUnreachable"
        assert "version 1 stays pinned" in reachable["message"]
        md = k.get("md", "down")
        assert md is not None and md["status"]["phase"] == "Ready"
        assert md["status"]["stableVersion"] == "1"
        assert {d["metadata"]["name"] for d in k.list("deployments")} == before
        events = json.loads(
            k.run("get", "events", "--field-selector", "involvedObject.name=down", "-o", "json")
        )["items"]
        assert any(
            e["reason"] == "RegistryUnreachable" and e["type"] == "Warning" for e in events
        ), [e["reason"] for e in events]
    finally:
        mlflow.start()
    eventually(
        lambda: condition(k.get("md", "down"), "SourceReachable").get("status") == "True",
        timeout=60,
        what="SourceReachable True again",
    )


def test_a_version_that_fails_analysis_is_rejected_until_the_alias_moves_or_retry_changes(
    operator: OperatorProcess, k: Kubectl, mlflow: MlflowServer
) -> None:
    registered = f"{k.namespace}-judged"
    mlflow.register(registered, 3)
    mlflow.set_alias(registered, "champion", "1")
    with failing_prometheus() as prometheus:
        rollout = {
            "steps": [50],
            "stepInterval": "2s",
            "scaleDownDelay": "0s",
            "analysis": {"prometheusUrl": prometheus, "successRate": {"min": 95},
                         "maxFailedChecks": 1},
        }  # fmt: skip
        body = following("judged", mlflow, registered, rollout)
        k.apply(body)
        wait_ready(k, "judged", timeout=90)

        def rejected(version: str) -> Any:
            md = k.get("md", "judged") or {}
            found = [r for r in md.get("status", {}).get("rejected", []) if r["version"] == version]
            return found[-1] if found else None

        mlflow.set_alias(registered, "champion", "2")
        rejection = eventually(lambda: rejected("2"), timeout=90, what="version 2 rejected")
        assert rejection["reason"].startswith("AnalysisFailed")
        md = k.get("md", "judged")
        assert md is not None and md["status"]["resolved"]["sha256"] == rejection["digest"]

        # Three polls while the alias still points at 2: no canary starts again.
        with k.watch("md", "judged", "{.status.canaryVersion}") as canary:
            eventually(
                lambda: (
                    condition(k.get("md", "judged"), "InSyncWithRegistry").get("reason")
                    == "VersionRejected"
                ),
                timeout=30,
                what="InSyncWithRegistry VersionRejected",
            )
            time.sleep(3 * POLL_SECONDS)  # three polls observed; no assertion on time
            canary.wait_caught_up()
        assert "2" not in canary.states, canary.states
        assert len(k.get("md", "judged")["status"]["rejected"]) == 1  # type: ignore[index]

        with k.watch("md", "judged", "{.status.canaryVersion}") as canary:
            mlflow.set_alias(registered, "champion", "3")
            eventually(lambda: rejected("3"), timeout=90, what="version 3 tried and rejected")
            canary.wait_caught_up()
        assert "3" in canary.states, canary.states

        retried = following("judged", mlflow, registered, rollout)
        retried["spec"]["model"]["source"]["retry"] = "once more"
        with k.watch("md", "judged", "{.status.canaryVersion}") as canary:
            k.apply(retried)

            def retried_and_rejected_again() -> bool:
                md = k.get("md", "judged") or {}
                return any(
                    r["version"] == "3" and r.get("retry") == "once more"
                    for r in md.get("status", {}).get("rejected", [])
                )

            eventually(retried_and_rejected_again, timeout=90, what="version 3 retried")
            canary.wait_caught_up()
        assert "3" in canary.states, canary.states
