"""The loop's readings of the cluster: a Job's outcome and the evaluator's result; the default
trigger query."""

from __future__ import annotations

import asyncio
import base64
import copy
from pathlib import Path
from typing import Any, cast

import pytest
from modeldeploy_operator.api.retraining import RunPhase
from modeldeploy_operator.kinds import Kind
from modeldeploy_operator.kube import KubeClient
from modeldeploy_operator.retraining.alerts import Alert
from modeldeploy_operator.retraining.jobs import evaluation_job_name
from modeldeploy_operator.retraining.loop import RetrainingLoop, default_query, job_observation
from modeldeploy_operator.retraining.machine import JobState
from modeldeploy_operator.retraining.receiver import NotLeading
from modeldeploy_operator.settings import OperatorSettings

from tests.support.settable_prometheus import settable_prometheus
from tests.unit.operator.registry.fake_mlflow import FakeMlflow, running
from tests.unit.operator.retraining.retraining_models import (
    EVALUATOR_IMAGE,
    POLICY_UID,
    T0,
    evaluation_json,
    policy,
    run,
    seconds,
    target,
)


def job(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "r-eval", "namespace": "models"},
        "status": {
            "conditions": [
                {"type": kind, "status": "True", "reason": reason, "message": "m"}
                for kind, reason in conditions
            ]
        },
    }


def pod(message: str | None, container: str = "evaluate") -> dict[str, Any]:
    state = {"terminated": {"exitCode": 0, "message": message}} if message else {"running": {}}
    return {"status": {"containerStatuses": [{"name": container, "state": state}]}}


def test_a_missing_job_is_absent_and_one_without_an_outcome_runs() -> None:
    assert job_observation(None, []).state == JobState.ABSENT
    # Kubernetes 1.31+ says SuccessCriteriaMet before Complete: only Complete is the outcome.
    assert job_observation(job(("SuccessCriteriaMet", "x")), []).state == JobState.RUNNING


def test_complete_and_failed() -> None:
    done = job_observation(job(("SuccessCriteriaMet", ""), ("Complete", "")), [pod('{"a": 1}')])
    assert (done.state, done.output) == (JobState.SUCCEEDED, '{"a": 1}')
    failed = job_observation(job(("Failed", "DeadlineExceeded")), [pod(None)])
    assert (failed.state, failed.message, failed.output) == (
        JobState.FAILED, "DeadlineExceeded: m", None,
    )  # fmt: skip


def test_only_the_evaluator_containers_message_is_its_result() -> None:
    assert job_observation(job(("Complete", "")), [pod("{}", container="sidecar")]).output is None


def test_the_default_trigger_is_the_targets_largest_drift() -> None:
    assert default_query("models", "iris") == (
        'max(modeldeploy_feature_drift{namespace="models",model="iris"})'
    )


# -- the apply step, against a recording Kubernetes client and the fake MLflow -----------------


class RecordingKube:
    """The KubeClient calls the loop makes: lists answered from `objects`, writes recorded."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.applied: list[dict[str, Any]] = []
        self.patched: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[tuple[str, str, bool]] = []
        self.scopes: set[str | None] = set()

    async def list(
        self, kind: Kind, namespace: str | None = None, *_: Any, **__: Any
    ) -> list[dict[str, Any]]:
        self.scopes.add(namespace)
        return copy.deepcopy(self.objects.get(kind.kind, []))

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found = [o for o in self.objects.get(kind.kind, []) if o["metadata"]["name"] == name]
        return copy.deepcopy(found[0]) if found else None

    async def apply(self, manifest: dict[str, Any]) -> None:
        self.applied.append(manifest)

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        self.patched.append((kind.kind, name, status))

    async def post_event(
        self, involved: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        self.events.append((involved["metadata"]["name"], reason, warning))


def evaluated_run(tracking_uri: str) -> dict[str, Any]:
    body = run(phase=RunPhase.EVALUATING, championVersion="1", candidateVersion="2").model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    body["spec"]["registry"]["trackingUri"] = tracking_uri
    return body


def evaluator_objects(run_name: str) -> dict[str, list[dict[str, Any]]]:
    good = evaluation_json({"accuracy": 0.95, "logLoss": 0.2}, {"accuracy": 0.9, "logLoss": 0.3})
    job_body = job(("Complete", ""))
    job_body["metadata"] = {"name": evaluation_job_name(run_name), "namespace": "models"}
    evaluator = pod(good)
    evaluator["metadata"] = {
        "name": "eval-pod", "namespace": "models",
        "labels": {"job-name": evaluation_job_name(run_name)},
    }  # fmt: skip
    return {"Job": [job_body], "Pod": [evaluator]}


async def one_pass(
    kube: RecordingKube,
    prometheus_url: str = "http://127.0.0.1:1",
    namespaces: tuple[str, ...] = (),
) -> None:
    settings = OperatorSettings(
        server_image=EVALUATOR_IMAGE, prometheus_url=prometheus_url, namespaces=namespaces
    )
    loop = RetrainingLoop(cast(KubeClient, kube), settings)
    try:
        await loop.pass_once()
    finally:
        await loop.close()


def test_the_alias_moves_before_promoting_is_written_and_a_failed_move_holds() -> None:
    asyncio.run(_alias_moves())


async def _alias_moves() -> None:
    mlflow = FakeMlflow(name="iris")
    mlflow.register("1")
    mlflow.register("2")
    mlflow.aliases["champion"] = "1"
    async with running(mlflow) as url:
        body = evaluated_run(url)
        objects = {
            "RetrainingPolicy": [policy().model_dump(mode="json", by_alias=True)],
            "RetrainingRun": [body],
            **evaluator_objects(body["metadata"]["name"]),
        }
        mlflow.down = True
        kube = RecordingKube(objects)
        await one_pass(kube)
        [(_, _, held)] = [p for p in kube.patched if p[0] == "RetrainingRun"]
        assert held["phase"] == "Evaluating" and held["reason"] == "RegistryUnreachable"
        assert mlflow.aliases["champion"] == "1"

        mlflow.down = False
        kube = RecordingKube(objects)
        await one_pass(kube)
        [(_, _, moved)] = [p for p in kube.patched if p[0] == "RetrainingRun"]
        assert moved["phase"] == "Promoting"
        assert mlflow.aliases["champion"] == "2"
        assert (body["metadata"]["name"], "Promoting", False) in kube.events


def test_a_held_trigger_applies_one_run_owned_by_its_policy() -> None:
    asyncio.run(_held_trigger())


async def _held_trigger() -> None:
    with settable_prometheus() as prometheus:
        prometheus.value = 0.5
        held = policy(status={"heldSince": (T0 - seconds(3600)).isoformat()})
        body = held.model_dump(mode="json", by_alias=True, exclude_none=True)
        md = target().model_dump(mode="json", by_alias=True, exclude_none=True)
        kube = RecordingKube({"RetrainingPolicy": [body], "ModelDeployment": [md]})
        await one_pass(kube, prometheus.url)
    [created] = kube.applied
    assert created["kind"] == "RetrainingRun"
    assert created["metadata"]["ownerReferences"][0]["uid"] == POLICY_UID
    assert created["spec"]["trigger"]["value"] == 0.5
    [(_, _, status)] = kube.patched
    assert status["activeRun"] == created["metadata"]["name"]
    assert ("iris-drift", "RunStarted", False) in kube.events


def test_nothing_is_written_when_nothing_changed() -> None:
    asyncio.run(_nothing_changed())


async def _nothing_changed() -> None:
    with settable_prometheus() as prometheus:
        prometheus.value = 0.01
        md = target().model_dump(mode="json", by_alias=True, exclude_none=True)
        body = policy().model_dump(mode="json", by_alias=True, exclude_none=True)
        kube = RecordingKube({"RetrainingPolicy": [body], "ModelDeployment": [md]})
        await one_pass(kube, prometheus.url)
        [(_, _, status)] = kube.patched
        body["status"] = status
        kube = RecordingKube({"RetrainingPolicy": [body], "ModelDeployment": [md]})
        await one_pass(kube, prometheus.url)
    assert kube.patched == [] and kube.applied == [] and kube.events == []


@pytest.mark.parametrize(
    ("namespaces", "scopes"),
    [((), {None}), (("models", "staging"), {"models", "staging"}), (("team-*",), {None})],
)
def test_an_operator_limited_to_namespaces_lists_only_in_them(
    namespaces: tuple[str, ...], scopes: set[str | None]
) -> None:
    """The chart's namespaced install grants Roles in the watched namespaces only: a list at
    the cluster scope is refused (403 on every pass). Patterns need the cluster scope, as for
    the controller's own lists."""
    body = policy().model_dump(mode="json", by_alias=True, exclude_none=True)
    kube = RecordingKube({"RetrainingPolicy": [body]})
    asyncio.run(one_pass(kube, namespaces=namespaces))
    assert kube.scopes == scopes


def test_alerts_delivered_to_the_leader_are_acted_on_before_the_answer() -> None:
    asyncio.run(_delivered())


async def _delivered() -> None:
    triggers = {"alertmanager": {"alertName": "ModelDrift"}}
    body = policy(triggers=triggers).model_dump(mode="json", by_alias=True, exclude_none=True)
    md = target().model_dump(mode="json", by_alias=True, exclude_none=True)
    kube = RecordingKube({"RetrainingPolicy": [body], "ModelDeployment": [md]})
    loop = RetrainingLoop(cast(KubeClient, kube), OperatorSettings(server_image=EVALUATOR_IMAGE))
    firing = Alert("4f2a9c0d1e3b5a77", T0, True, {"alertname": "ModelDrift"})
    leading = asyncio.Event()
    # Not leading (a standby, or not started): refused, so Alertmanager retries elsewhere.
    with pytest.raises(NotLeading):
        await loop.deliver([firing])
    task = asyncio.create_task(loop.run(leading))
    try:
        await asyncio.sleep(0)
        with pytest.raises(NotLeading):
            await loop.deliver([firing])
        leading.set()
        # The answer waits for the pass that acted: the run is applied when it returns.
        await loop.deliver([firing])
        [created] = kube.applied
        assert created["spec"]["trigger"]["alert"]["fingerprint"] == "4f2a9c0d1e3b5a77"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(
    ("token_file", "armed"),
    [(None, ("False", "AlertReceiverTokenMissing")), ("/etc/modeldeploy/token", ("True", "Armed"))],
)
def test_an_alert_trigger_reports_whether_this_operator_serves_the_receiver(
    token_file: str | None, armed: tuple[str, str]
) -> None:
    """Started without --alertmanager-token-file the operator serves no receiver: a policy
    waiting only for an alert would wait forever, and says so."""
    triggers = {"alertmanager": {"alertName": "ModelDrift"}}
    body = policy(triggers=triggers).model_dump(mode="json", by_alias=True, exclude_none=True)
    md = target().model_dump(mode="json", by_alias=True, exclude_none=True)
    kube = RecordingKube({"RetrainingPolicy": [body], "ModelDeployment": [md]})
    settings = OperatorSettings(
        server_image=EVALUATOR_IMAGE,
        alertmanager_token_file=Path(token_file) if token_file else None,
    )
    loop = RetrainingLoop(cast(KubeClient, kube), settings)
    try:
        asyncio.run(loop.pass_once())
    finally:
        asyncio.run(loop.close())
    [(_, _, status)] = kube.patched
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Armed"] == armed
    missing = [e for e in kube.events if e[1] == "AlertReceiverTokenMissing"]
    assert missing == ([] if token_file else [("iris-drift", "AlertReceiverTokenMissing", True)])


def test_the_loops_registry_calls_carry_the_runs_credentials() -> None:
    asyncio.run(_with_credentials())


async def _with_credentials() -> None:
    authorization = "Basic " + base64.b64encode(b"reader:s3cret").decode()
    mlflow = FakeMlflow(name="iris", authorization=authorization)
    mlflow.register("1")
    mlflow.register("2")
    mlflow.aliases["champion"] = "1"
    secret = {
        "kind": "Secret",
        "metadata": {"name": "mlflow-auth", "namespace": "models"},
        "data": {
            "username": base64.b64encode(b"reader").decode(),
            "password": base64.b64encode(b"s3cret").decode(),
        },
    }
    async with running(mlflow) as url:
        body = evaluated_run(url)
        body["spec"]["registry"]["credentialsSecretRef"] = {"name": "mlflow-auth"}
        objects = {
            "RetrainingPolicy": [policy().model_dump(mode="json", by_alias=True)],
            "RetrainingRun": [body],
            **evaluator_objects(body["metadata"]["name"]),
        }
        # Without its Secret the run holds, naming it; the registry is not asked.
        kube = RecordingKube(objects)
        await one_pass(kube)
        [(_, _, held)] = [p for p in kube.patched if p[0] == "RetrainingRun"]
        assert held["phase"] == "Evaluating"
        assert "Secret mlflow-auth (credentialsSecretRef) does not exist" in held["message"]
        assert mlflow.aliases["champion"] == "1" and mlflow.requests == []
        kube = RecordingKube({**objects, "Secret": [secret]})
        await one_pass(kube)
        [(_, _, moved)] = [p for p in kube.patched if p[0] == "RetrainingRun"]
        assert moved["phase"] == "Promoting"
        assert mlflow.aliases["champion"] == "2"
        assert "s3cret" not in str(kube.patched) + str(kube.events)
