"""Retraining on drift behind an evaluation gate, on the local cluster, end to end: a real
`mlflow server` on the host's address toward the real node; the worked example's trainer
(examples/retraining/train.py) and the operator's evaluator (`modeldeploy evaluate`) run as real
Jobs on the real node; the target ModelDeployment follows the alias on the fake nodes, and its
registry-driven canary (part 1) is the online gate.

The trigger's value comes from a stand-in of Prometheus's query API that the test raises
(tests/support/settable_prometheus.py): what is exercised is the hold and the guards, not the
drift series (which the model server's tests cover).

- A value held above the threshold starts exactly one run; a good trainer's candidate passes the
  gate, the alias moves, the canary promotes it; the trigger, still held, is suppressed by the
  cooldown and no second run starts.
- A trainer that shuffles its labels: GateFailed, the alias does not move.
- Three trainers that crash: three runs Failed, the policy Suspended, no fourth run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
from modeldeploy_operator import drift_loop
from modeldeploy_operator.local_mlflow import MlflowServer
from sklearn.datasets import load_iris

from tests.support.images import SERVER_IMAGE
from tests.support.kube import Kubectl, eventually
from tests.support.models import model
from tests.support.nodes import REAL_NODE_SELECTOR
from tests.support.operator_process import OperatorProcess
from tests.support.settable_prometheus import SettablePrometheus, settable_prometheus

ROOT: Final = Path(__file__).resolve().parents[2]
TRAINER: Final = ROOT / "examples" / "retraining" / "train.py"
THRESHOLD: Final = 0.2
DRIFTED: Final = 0.45
# A run: the trainer's and the evaluator's pods on the real node, then a canary step.
RUN_TIMEOUT: Final = 300


pytestmark = pytest.mark.usefixtures("retraining_crds")


@pytest.fixture(scope="module")
def data_url(tmp_path_factory: pytest.TempPathFactory, host_address: str) -> Iterator[str]:
    """train.csv and holdout.csv (iris, 105 and 45 rows), served from the host to the pods."""
    directory = tmp_path_factory.mktemp("data")
    features, labels = load_iris(return_X_y=True)
    order = np.random.default_rng(7).permutation(len(labels))
    header = "sepal_length,sepal_width,petal_length,petal_width,label\n"
    for name, rows in (("train.csv", order[:105]), ("holdout.csv", order[105:])):
        lines = [",".join(f"{v:g}" for v in features[i]) + f",{labels[i]}\n" for i in rows]
        (directory / name).write_text(header + "".join(lines))
    with drift_loop.served_files(directory, host_address) as url:
        yield url


@pytest.fixture
def prometheus() -> Iterator[SettablePrometheus]:
    with settable_prometheus() as stand_in:
        yield stand_in


def register_champion(mlflow: MlflowServer, data_url: str, registered: str) -> None:
    """Version 1, the champion: a stale model (the example trained on shuffled labels), which a
    sound candidate beats."""
    env = {
        **os.environ,
        "MODELDEPLOY_RETRAINING_RUN": "initial",
        "MODELDEPLOY_REGISTERED_MODEL": registered,
        "MLFLOW_TRACKING_URI": mlflow.url,
    }
    subprocess.run(
        [sys.executable, str(TRAINER), "--data", f"{data_url}/train.csv", "--shuffle-labels"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    mlflow.set_alias(registered, "champion", "1")


def alias_version(mlflow: MlflowServer, registered: str) -> str:
    import httpx

    answer = httpx.get(
        f"{mlflow.url}/api/2.0/mlflow/registered-models/alias",
        params={"name": registered, "alias": "champion"},
    )
    answer.raise_for_status()
    return str(answer.json()["model_version"]["version"])


def following(name: str, mlflow: MlflowServer, registered: str) -> dict[str, Any]:
    body = model(name, rollout={"steps": [50], "stepInterval": "5s"}, replicas=1)
    body["spec"]["model"] = {
        "format": "sklearn",
        "source": {
            "mlflow": {
                "trackingUri": mlflow.url,
                "registeredModel": registered,
                "follow": {"alias": "champion"},
                "pollInterval": "5s",
            }
        },
    }
    return body


def policy(name: str, target: str, data_url: str, prometheus_url: str, *trainer_args: str) -> Any:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "RetrainingPolicy",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": target},
            "triggers": {
                "metric": {
                    "query": "max(drift_stand_in)",
                    "above": THRESHOLD,
                    "holdFor": "5s",
                    "prometheusUrl": prometheus_url,
                }
            },
            "guards": {"cooldown": "10m", "maxRuns": 3, "window": "1h"},
            "training": {
                "timeout": "5m",
                "jobTemplate": {
                    "template": {
                        "spec": {
                            "nodeSelector": REAL_NODE_SELECTOR,
                            "containers": [
                                {
                                    "name": "train",
                                    "image": SERVER_IMAGE,
                                    "imagePullPolicy": "Never",
                                    "command": ["python", "/opt/trainer/train.py"],
                                    "args": ["--data", f"{data_url}/train.csv", *trainer_args],
                                    "volumeMounts": [
                                        {"name": "trainer", "mountPath": "/opt/trainer"}
                                    ],
                                }
                            ],
                            "volumes": [{"name": "trainer", "configMap": {"name": "trainer"}}],
                        }
                    }
                },
            },
            "evaluation": {
                "holdoutUri": f"{data_url}/holdout.csv",
                "metrics": [
                    {"name": "accuracy", "threshold": 0.8, "minImprovement": 0.05},
                    {"name": "f1Macro"},
                ],
            },
        },
    }


def trainer_config_map(k: Kubectl) -> None:
    k.run("create", "configmap", "trainer", f"--from-file=train.py={TRAINER}")


def runs_of(k: Kubectl, policy_name: str) -> list[dict[str, Any]]:
    return [r for r in k.list("retrainingruns") if r["spec"]["policy"] == policy_name]


def finished_run(k: Kubectl, policy_name: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        runs = runs_of(k, policy_name)
        assert len(runs) <= 1, [r["metadata"]["name"] for r in runs]
        phase = runs[0].get("status", {}).get("phase") if runs else None
        return runs[0] if phase in ("Promoted", "GateFailed", "RolledBack", "Failed") else None

    return eventually(finished, timeout=RUN_TIMEOUT, what=f"a finished run of {policy_name}")


def event_reasons(k: Kubectl, name: str) -> list[str]:
    events = json.loads(
        k.run("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    )["items"]
    return [e["reason"] for e in events]


def test_drift_retrains_once_and_a_better_candidate_is_promoted_through_the_canary(
    operator: OperatorProcess,
    k: Kubectl,
    mlflow: MlflowServer,
    data_url: str,
    prometheus: SettablePrometheus,
) -> None:
    registered = f"{k.namespace}-iris"
    register_champion(mlflow, data_url, registered)
    trainer_config_map(k)
    k.apply(following("iris", mlflow, registered))
    k.apply(policy("iris-drift", "iris", data_url, prometheus.url))

    def armed() -> bool:
        found = k.get("retrainingpolicy", "iris-drift") or {}
        conditions = found.get("status", {}).get("conditions", [])
        return any(c["type"] == "Armed" and c["status"] == "True" for c in conditions)

    eventually(armed, timeout=90, what="the policy Armed (its target resolved the alias)")
    assert runs_of(k, "iris-drift") == []
    drifted = time.monotonic()
    prometheus.value = DRIFTED
    run = finished_run(k, "iris-drift")
    elapsed = time.monotonic() - drifted
    print(f"drift over threshold → candidate promoted: {elapsed:.1f}s (holdFor 5s, poll 5s)")

    status = run["status"]
    assert status["phase"] == "Promoted", status
    assert (status["championVersion"], status["candidateVersion"]) == ("1", "2")
    rows = {row["name"]: row for row in status["metrics"]}
    assert rows["accuracy"]["passed"] and rows["accuracy"]["candidate"] >= 0.8
    assert rows["accuracy"]["candidate"] - rows["accuracy"]["champion"] >= 0.05
    assert status["holdoutRows"] == 45 and len(status["holdoutSha256"]) == 64
    assert run["spec"]["trigger"]["value"] == DRIFTED
    assert alias_version(mlflow, registered) == "2"
    md = k.get("md", "iris")
    assert md is not None and md["status"]["stableVersion"] == "2"
    reasons = event_reasons(k, run["metadata"]["name"])
    for reason in ("Training", "Evaluating", "Promoting", "Promoted"):
        assert reason in reasons, reasons

    # Still drifted: the trigger holds again and fires, but the cooldown suppresses it.
    def suppressed() -> dict[str, Any] | None:
        found = k.get("retrainingpolicy", "iris-drift") or {}
        last = found.get("status", {}).get("lastTrigger", {})
        return found if "cooling down" in (last.get("suppressed") or "") else None

    found = eventually(suppressed, timeout=60, what="the second trigger suppressed")
    conditions = {c["type"]: c for c in found["status"]["conditions"]}
    assert conditions["CoolingDown"]["status"] == "True"
    assert conditions["Armed"]["reason"] == "CoolingDown"
    assert "TriggerSuppressed" in event_reasons(k, "iris-drift")
    assert len(runs_of(k, "iris-drift")) == 1


def test_a_trainer_that_shuffles_labels_is_stopped_by_the_gate(
    operator: OperatorProcess,
    k: Kubectl,
    mlflow: MlflowServer,
    data_url: str,
    prometheus: SettablePrometheus,
) -> None:
    registered = f"{k.namespace}-iris"
    register_champion(mlflow, data_url, registered)
    trainer_config_map(k)
    k.apply(following("iris", mlflow, registered))
    k.apply(policy("shuffled", "iris", data_url, prometheus.url, "--shuffle-labels"))
    prometheus.value = DRIFTED
    run = finished_run(k, "shuffled")
    status = run["status"]
    assert status["phase"] == "GateFailed", status
    assert status["candidateVersion"] == "2"
    rows = {row["name"]: row for row in status["metrics"]}
    assert not rows["accuracy"]["passed"]
    assert "threshold 0.8" in rows["accuracy"]["reason"]
    assert alias_version(mlflow, registered) == "1"
    md = k.get("md", "iris")
    assert md is not None and md["status"]["stableVersion"] == "1"
    assert "GateFailed" in event_reasons(k, run["metadata"]["name"])


def test_three_crashing_trainers_suspend_the_policy(
    operator: OperatorProcess,
    k: Kubectl,
    mlflow: MlflowServer,
    data_url: str,
    prometheus: SettablePrometheus,
) -> None:
    registered = f"{k.namespace}-iris"
    register_champion(mlflow, data_url, registered)
    trainer_config_map(k)
    k.apply(following("iris", mlflow, registered))
    crashing = policy("crashing", "iris", data_url, prometheus.url)
    crashing["spec"]["guards"] = {"cooldown": "1s", "maxRuns": 10, "suspendAfterFailures": 3}
    [container] = crashing["spec"]["training"]["jobTemplate"]["template"]["spec"]["containers"]
    container["command"], container["args"] = ["python", "-c", "raise SystemExit(3)"], []
    k.apply(crashing)
    prometheus.value = DRIFTED

    def suspended() -> dict[str, Any] | None:
        found = k.get("retrainingpolicy", "crashing") or {}
        conditions = {c["type"]: c for c in found.get("status", {}).get("conditions", [])}
        return found if conditions.get("Suspended", {}).get("status") == "True" else None

    found = eventually(suspended, timeout=3 * RUN_TIMEOUT, what="the policy Suspended")
    runs = runs_of(k, "crashing")
    assert len(runs) == 3, [r["metadata"]["name"] for r in runs]
    assert {r["status"]["phase"] for r in runs} == {"Failed"}
    assert {r["status"]["reason"] for r in runs} == {"TrainingFailed"}
    conditions = {c["type"]: c for c in found["status"]["conditions"]}
    assert conditions["Armed"]["reason"] == "Suspended"
    assert found["status"]["consecutiveFailures"] == 3
    assert "Suspended" in event_reasons(k, "crashing")
    assert alias_version(mlflow, registered) == "1"
