"""Registry-driven rollouts through whole reconcile passes: a fake API client, a fake MLflow over
real HTTP, and the poll clock moved by hand (the reconciler's monotonic clock)."""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from modeldeploy_operator.reconciler import Reconciler
from modeldeploy_operator.settings import OperatorSettings
from modeldeploy_operator.view import ClusterView
from modeldeploy_operator.workqueue import WorkQueue
from prometheus_client import REGISTRY

from tests.unit.operator.factories import IMAGE, md_body
from tests.unit.operator.registry.fake_mlflow import FakeMlflow, running
from tests.unit.operator.test_reconciler import KEY, FakeClient, ready

Body = dict[str, Any]
POLL_SECONDS = 30.0


class Harness:
    """One ModelDeployment following iris@champion, reconciled pass by pass."""

    def __init__(self, base: str, client: FakeClient, clock: list[float]) -> None:
        self.client = client
        self.view = ClusterView()
        self.clock = clock
        self.versions = itertools.count(1000)
        body = md_body(replicas=1, rollout={"steps": [50], "stepInterval": "10s"})
        body["spec"]["model"] = {
            "format": "sklearn",
            "source": {
                "mlflow": {
                    "trackingUri": base,
                    "registeredModel": "iris",
                    "follow": {"alias": "champion"},
                    "pollInterval": f"{POLL_SECONDS:g}s",
                }
            },
        }
        self.update(body)
        self.reconciler = Reconciler(
            client,  # type: ignore[arg-type]
            self.view,
            WorkQueue(),
            OperatorSettings(server_image=IMAGE),
        )

    def update(self, body: Body) -> None:
        body["metadata"]["resourceVersion"] = str(next(self.versions))
        assert self.view.remember_model(body)

    @property
    def body(self) -> Body:
        return self.view.models[KEY]

    @property
    def status(self) -> Body:
        status: Body = self.body.get("status") or {}
        return status

    def condition(self, kind: str) -> Body:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    async def reconcile(self) -> None:
        await self.reconciler.reconcile(KEY)

    async def poll_due(self) -> None:
        """The poll interval passes, and the pass its timer queued runs."""
        self.clock[0] += POLL_SECONDS
        await self.reconcile()

    def deployments(self) -> dict[str, Body]:
        return {
            name: body
            for (kind, name), body in self.view.children_of(KEY).items()
            if kind == "Deployment"
        }

    async def settle(self) -> None:
        """Every Deployment becomes ready, and the pass that notices runs."""
        for deployment in self.deployments().values():
            self.view.remember_child(KEY, ready(deployment, next(self.versions)))
        await self.reconcile()

    def applied_deployments(self) -> list[str]:
        return [m["metadata"]["name"] for m in self.client.applied if m["kind"] == "Deployment"]


Scenario = Callable[[Harness, FakeMlflow, str], Awaitable[None]]


def run(mlflow: FakeMlflow, monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    clock = [1000.0]
    monkeypatch.setattr("modeldeploy_operator.registry.poller.time.monotonic", lambda: clock[0])

    async def main() -> None:
        async with running(mlflow) as base:
            harness = Harness(base, FakeClient(), clock)
            try:
                await scenario(harness, mlflow, base)
            finally:
                await harness.reconciler.close()

    asyncio.run(main())


def fetch_args(deployment: Body) -> list[str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["initContainers"][0]["args"]
    return args


def server_args(deployment: Body) -> list[str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_children_are_pinned_to_the_resolved_version_file_and_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow()
    digest = mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, _: FakeMlflow, base: str) -> None:
        await h.reconcile()
        deployment = h.deployments()["iris-v1"]
        model_file = f"{base}/api/2.0/mlflow-artifacts/artifacts/1/models/m-1/artifacts/model.pkl"
        assert fetch_args(deployment)[:2] == ["fetch", model_file]
        assert fetch_args(deployment)[-2:] == ["--sha256", digest]
        assert server_args(deployment)[-2:] == ["--sha256", digest]
        assert "@" not in str(deployment)
        resolved = h.status["resolved"]
        assert (resolved["alias"], resolved["version"], resolved["runId"]) == (
            "champion",
            "1",
            "run1",
        )
        assert (resolved["sha256"], resolved["modelFileUri"]) == (digest, model_file)
        assert resolved["artifactUri"] == "mlflow-artifacts:/1/models/m-1/artifacts"
        assert h.condition("SourceReachable")["status"] == "True"
        await h.settle()
        assert h.condition("InSyncWithRegistry")["status"] == "True"
        assert h.status["stableVersion"] == "1"

    run(mlflow, monkeypatch, scenario)


def test_the_registry_is_asked_once_per_poll_interval_not_on_every_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        asked = registry.requests.count("/api/2.0/mlflow/registered-models/alias")
        await h.settle()
        await h.reconcile()
        assert registry.requests.count("/api/2.0/mlflow/registered-models/alias") == asked == 1
        downloads = len([p for p in registry.requests if p.endswith("model.pkl")])
        await h.poll_due()
        assert registry.requests.count("/api/2.0/mlflow/registered-models/alias") == 2
        # The pinned version's file is not downloaded again to learn a digest already known.
        assert len([p for p in registry.requests if p.endswith("model.pkl")]) == downloads

    run(mlflow, monkeypatch, scenario)


def test_moving_the_alias_starts_a_canary_pinned_to_the_new_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    digest2 = mlflow.register("2")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        await h.settle()
        registry.aliases["champion"] = "2"
        await h.reconcile()  # before the poll is due: nothing moves yet
        assert "iris-v2" not in h.deployments()
        await h.poll_due()
        canary = h.deployments()["iris-v2"]
        assert fetch_args(canary)[-2:] == ["--sha256", digest2]
        assert h.status["canaryVersion"] == "2"
        assert h.status["stableVersion"] == "1"
        assert h.condition("InSyncWithRegistry")["reason"] == "RollingOut"
        assert "RolloutStarted" in [reason for reason, _ in h.client.events]

    run(mlflow, monkeypatch, scenario)


def test_registry_down_keeps_everything_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        await h.settle()
        registry.down = True
        await h.poll_due()
        assert h.client.deleted == []
        assert set(h.deployments()) == {"iris-v1"}
        reachable = h.condition("SourceReachable")
        assert (reachable["status"], reachable["reason"]) == ("False", "RegistryUnreachable")
        assert "HTTP 503" in reachable["message"]
        assert "version 1 stays pinned" in reachable["message"]
        assert h.status["resolved"]["version"] == "1"
        assert h.status["phase"] == "Ready"
        assert any(reason == "RegistryUnreachable" for reason, _ in h.client.events)
        registry.down = False
        await h.poll_due()
        assert h.condition("SourceReachable")["status"] == "True"

    run(mlflow, monkeypatch, scenario)


def test_a_deleted_alias_keeps_the_last_version(monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        await h.settle()
        del registry.aliases["champion"]
        await h.poll_due()
        assert h.client.deleted == []
        assert h.condition("SourceReachable")["reason"] == "ReferenceNotFound"
        in_sync = h.condition("InSyncWithRegistry")
        assert (in_sync["status"], in_sync["reason"]) == ("False", "ReferenceNotFound")
        assert h.status["stableVersion"] == "1"

    run(mlflow, monkeypatch, scenario)


def test_nothing_is_created_before_the_registry_first_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow(down=True)
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        assert h.client.applied == []
        assert h.status["phase"] == "Pending"
        assert h.condition("InSyncWithRegistry")["reason"] == "NothingResolved"
        registry.down = False
        await h.poll_due()
        assert set(h.deployments()) == {"iris-v1"}

    run(mlflow, monkeypatch, scenario)


async def fail_the_canary(h: Harness) -> None:
    """The canary's progress deadline passes while it is not ready: the machine rolls back."""
    body = copy.deepcopy(h.body)
    body["status"]["stepStartedAt"] = "2020-01-01T00:00:00Z"
    h.update(body)
    await h.reconcile()


def test_a_rolled_back_version_is_rejected_and_not_retried_while_the_alias_points_at_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    digest2 = mlflow.register("2")
    mlflow.register("3")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        await h.settle()
        registry.aliases["champion"] = "2"
        await h.poll_due()
        assert "iris-v2" in h.deployments()
        await fail_the_canary(h)
        assert h.status["stableVersion"] == "1"
        [rejection] = h.status["rejected"]
        assert (rejection["version"], rejection["digest"]) == ("2", digest2)
        assert rejection["reason"].startswith("ProgressDeadlineExceeded")
        assert "VersionRejected" in [reason for reason, _ in h.client.events]

        h.client.applied.clear()
        for _ in range(3):
            await h.poll_due()
        assert "iris-v2" not in h.applied_deployments()
        assert h.status.get("canaryVersion") is None
        in_sync = h.condition("InSyncWithRegistry")
        assert (in_sync["status"], in_sync["reason"]) == ("False", "VersionRejected")
        assert h.status["phase"] == "Ready"

        registry.aliases["champion"] = "3"
        await h.poll_due()
        assert h.status["canaryVersion"] == "3"

    run(mlflow, monkeypatch, scenario)


def test_changing_the_retry_field_retries_a_rejected_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.register("2")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        await h.settle()
        registry.aliases["champion"] = "2"
        await h.poll_due()
        await fail_the_canary(h)
        assert h.status.get("canaryVersion") is None
        await h.poll_due()
        assert h.status.get("canaryVersion") is None

        body = copy.deepcopy(h.body)
        body["spec"]["model"]["source"]["retry"] = "1"
        h.update(body)
        await h.reconcile()
        assert h.status["canaryVersion"] == "2"
        assert h.condition("InSyncWithRegistry")["reason"] == "RollingOut"

    run(mlflow, monkeypatch, scenario)


def test_the_operator_never_writes_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.register("2")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        declared = copy.deepcopy(h.body["spec"])
        await h.reconcile()
        await h.settle()
        registry.aliases["champion"] = "2"
        await h.poll_due()
        assert h.body["spec"] == declared
        assert all("spec" not in status for status in h.client.statuses)

    run(mlflow, monkeypatch, scenario)


def rolled_back_gauge(version: str) -> float | None:
    value: float | None = REGISTRY.get_sample_value(
        "modeldeploy_operator_rolled_back",
        {"namespace": KEY[0], "name": KEY[1], "version": version},
    )
    return value


def test_the_rolled_back_gauge_holds_while_the_alias_points_at_a_rejected_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ModelDeploymentRolledBack alert reads it: for a followed registry, "the spec asks for
    a rolled-back version" is "the alias points at a rejected one"."""
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.register("2")
    mlflow.register("3")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        await h.reconcile()
        await h.settle()
        registry.aliases["champion"] = "2"
        await h.poll_due()
        await fail_the_canary(h)
        await h.poll_due()
        await h.poll_due()
        assert rolled_back_gauge("2") == 1
        registry.aliases["champion"] = "3"
        await h.poll_due()
        assert rolled_back_gauge("2") is None

    run(mlflow, monkeypatch, scenario)


def test_naming_a_version_again_drops_what_the_registry_left_in_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow()
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, _: FakeMlflow, __: str) -> None:
        await h.reconcile()
        await h.settle()
        body = copy.deepcopy(h.body)
        body["spec"]["model"] = md_body()["spec"]["model"]
        h.update(body)
        await h.reconcile()
        # A merge patch: the keys must be sent as null for the apiserver to remove them.
        patch = h.client.statuses[-1]
        assert "resolved" in patch and patch["resolved"] is None
        assert "rejected" in patch and patch["rejected"] is None
        assert {c["type"] for c in patch["conditions"]}.isdisjoint(
            {"SourceReachable", "InSyncWithRegistry"}
        )

    run(mlflow, monkeypatch, scenario)


SECRET_NAME = "mlflow-auth"
PASSWORD = "s3cret-pa55"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def put_secret(h: Harness, **data: str) -> None:
    h.client.existing[("Secret", SECRET_NAME)] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": KEY[0]},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def follow_with_credentials(h: Harness) -> None:
    body = copy.deepcopy(h.body)
    body["spec"]["model"]["source"]["mlflow"]["credentialsSecretRef"] = {"name": SECRET_NAME}
    h.update(body)


def shown(h: Harness, caplog: pytest.LogCaptureFixture) -> str:
    """Everything the operator wrote or said: children, statuses, Events, logs."""
    return json.dumps([h.client.applied, h.client.statuses, h.client.events]) + caplog.text


def test_credentials_from_the_secret_resolve_and_pods_get_them_by_reference(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow = FakeMlflow(authorization=basic("reader", PASSWORD))
    digest = mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, _: FakeMlflow, base: str) -> None:
        follow_with_credentials(h)
        put_secret(h, username="reader", password=PASSWORD)
        await h.reconcile()
        assert h.condition("SourceReachable")["status"] == "True"
        assert h.status["resolved"]["sha256"] == digest
        pod = h.deployments()["iris-v1"]["spec"]["template"]["spec"]
        for container in (pod["initContainers"][0], pod["containers"][0]):
            env = {e["name"]: e for e in container["env"]}
            # The fetcher sends the credentials to the tracking server's URLs only.
            assert env["MLFLOW_TRACKING_URI"]["value"] == base
            for name, key in (
                ("MLFLOW_TRACKING_USERNAME", "username"),
                ("MLFLOW_TRACKING_PASSWORD", "password"),
                ("MLFLOW_TRACKING_TOKEN", "token"),
            ):
                assert env[name]["valueFrom"]["secretKeyRef"] == {
                    "name": SECRET_NAME, "key": key, "optional": True,
                }  # fmt: skip
        assert PASSWORD not in shown(h, caplog)

    run(mlflow, monkeypatch, scenario)


def test_refused_or_missing_credentials_keep_serving_and_say_why_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow = FakeMlflow(authorization=basic("reader", PASSWORD))
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    def reasons(h: Harness, reason: str) -> int:
        return [r for r, _ in h.client.events].count(reason)

    async def scenario(h: Harness, _: FakeMlflow, base: str) -> None:
        follow_with_credentials(h)
        put_secret(h, username="reader", password=PASSWORD)
        await h.reconcile()
        await h.settle()
        # The password changed on the server, not in the Secret: 401.
        put_secret(h, username="reader", password="stale-pa55")
        await h.poll_due()
        reachable = h.condition("SourceReachable")
        assert (reachable["status"], reachable["reason"]) == ("False", "AccessDenied")
        assert "HTTP 401" in reachable["message"]
        assert f"refused the credentials in Secret {SECRET_NAME}" in reachable["message"]
        assert "version 1 stays pinned" in reachable["message"]
        await h.poll_due()
        assert reasons(h, "AccessDenied") == 1
        # The Secret gone: said so, by name; still nothing torn down.
        del h.client.existing[("Secret", SECRET_NAME)]
        await h.poll_due()
        reachable = h.condition("SourceReachable")
        assert (reachable["status"], reachable["reason"]) == ("False", "CredentialsUnavailable")
        assert f"Secret {SECRET_NAME} (credentialsSecretRef) does not exist" in reachable["message"]
        assert reasons(h, "CredentialsUnavailable") == 1
        # A Secret without the keys.
        put_secret(h, user="reader")
        await h.poll_due()
        assert (
            "needs the keys username and password, or token"
            in h.condition("SourceReachable")["message"]
        )
        assert h.client.deleted == []
        assert set(h.deployments()) == {"iris-v1"}
        assert h.status["phase"] == "Ready" and h.status["stableVersion"] == "1"
        put_secret(h, username="reader", password=PASSWORD)
        await h.poll_due()
        assert h.condition("SourceReachable")["status"] == "True"
        assert PASSWORD not in shown(h, caplog) and "stale-pa55" not in shown(h, caplog)

    run(mlflow, monkeypatch, scenario)


def test_without_its_secret_nothing_is_created_and_the_reason_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow(authorization=basic("reader", PASSWORD))
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, registry: FakeMlflow, _: str) -> None:
        follow_with_credentials(h)
        await h.reconcile()
        assert h.client.applied == []
        assert h.status["phase"] == "Pending"
        reachable = h.condition("SourceReachable")
        assert (reachable["status"], reachable["reason"]) == ("False", "CredentialsUnavailable")
        assert registry.requests == []  # not asked without its credentials
        assert [r for r, _ in h.client.events].count("CredentialsUnavailable") == 1

    run(mlflow, monkeypatch, scenario)


def test_a_registry_wanting_credentials_that_the_source_has_not_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = FakeMlflow(authorization=basic("reader", PASSWORD))
    mlflow.register("1")
    mlflow.aliases["champion"] = "1"

    async def scenario(h: Harness, _: FakeMlflow, base: str) -> None:
        await h.reconcile()
        reachable = h.condition("SourceReachable")
        assert (reachable["status"], reachable["reason"]) == ("False", "AccessDenied")
        assert "set credentialsSecretRef" in reachable["message"]

    run(mlflow, monkeypatch, scenario)
