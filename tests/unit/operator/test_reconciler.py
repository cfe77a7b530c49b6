"""One reconcile pass against a fake API client: what is applied, kept, deleted and reported."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.kinds import Kind
from modeldeploy_operator.kube import FIELD_MANAGER, HANDOVER_FIELD_MANAGER, ApiError
from modeldeploy_operator.reconciler import Reconciler, replicas_handover
from modeldeploy_operator.settings import OperatorSettings
from modeldeploy_operator.view import ClusterView, Key
from modeldeploy_operator.workqueue import WorkQueue

from tests.unit.operator.factories import IMAGE, md_body

Body = dict[str, Any]
KEY: Key = ("models", "iris")


class FakeClient:
    """Answers like an apiserver: every write gets the next resourceVersion."""

    def __init__(self) -> None:
        self.versions = itertools.count(100)
        self.applied: list[Body] = []
        self.managers: list[str] = []
        self.statuses: list[Body] = []
        self.events: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        self.calls: list[str] = []  # "apply Kind/name" and "delete plural/name", in order
        self.failing: dict[str, ApiError] = {}  # by kind: the error its applies answer
        # Objects the API holds that the watch-fed view never sees (they lack our labels).
        self.existing: dict[tuple[str, str], Body] = {}
        # Called with each apply's answer before it is returned (a watch event racing it).
        self.while_applying: Callable[[Body], None] = lambda _: None

    async def apply(self, manifest: Body, field_manager: str = FIELD_MANAGER) -> Body:
        self.calls.append(f"apply {manifest['kind']}/{manifest['metadata']['name']}")
        if manifest["kind"] in self.failing:
            raise self.failing[manifest["kind"]]
        self.applied.append(manifest)
        self.managers.append(field_manager)
        answer = copy.deepcopy(manifest)
        answer["metadata"]["resourceVersion"] = str(next(self.versions))
        answer["metadata"]["generation"] = 1
        await asyncio.sleep(0)
        self.while_applying(answer)
        return answer

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Body) -> Body:
        self.statuses.append(status)
        return {"metadata": {"resourceVersion": str(next(self.versions))}, "status": status}

    async def post_event(self, involved: Body, reason: str, message: str, warning: bool) -> None:
        self.events.append((reason, message))

    async def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        self.calls.append(f"delete {kind.plural}/{name}")
        self.deleted.append((kind.plural, name))

    async def exists(self, kind: Kind) -> bool:
        return False

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None:
        self.calls.append(f"get {kind.kind}/{name}")
        found = self.existing.get((kind.kind, name))
        return copy.deepcopy(found) if found is not None else None

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Body]:
        assert label_selector is None and field_selector is not None
        name = field_selector.removeprefix("metadata.name=")
        found = self.existing.get((kind.kind, name))
        return [copy.deepcopy(found)] if found is not None else []


def ready(deployment: Body, version: int) -> Body:
    """What the Deployment controller writes once its pods are ready: a newer body."""
    body = copy.deepcopy(deployment)
    body["metadata"]["resourceVersion"] = str(version)
    replicas = body["spec"].get("replicas", 1)
    body["status"] = {
        "observedGeneration": body["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    return body


def reconciler_for(body: Body) -> tuple[Reconciler, FakeClient, ClusterView]:
    client = FakeClient()
    view = ClusterView()
    body["metadata"]["resourceVersion"] = "10"
    view.remember_model(body)
    settings = OperatorSettings(server_image=IMAGE)
    return Reconciler(client, view, WorkQueue(), settings), client, view  # type: ignore[arg-type]


def test_a_ready_status_delivered_while_other_children_are_applied_is_kept() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1))

    def deployment_becomes_ready(answer: Body) -> None:
        # The watch delivers the Deployment's ready status while the Services are still being
        # applied: newer than the apply answer that gather() hands back afterwards.
        if answer["kind"] == "Deployment":
            view.remember_child(KEY, ready(answer, 10_000))

    client.while_applying = deployment_becomes_ready
    asyncio.run(reconciler.reconcile(KEY))
    client.while_applying = lambda _: None
    asyncio.run(reconciler.reconcile(KEY))

    deployment = view.children_of(KEY)[("Deployment", "iris-v1")]
    assert deployment["status"]["readyReplicas"] == 1
    assert client.statuses[-1]["phase"] == "Ready"


def test_an_older_apply_answer_never_replaces_a_newer_child() -> None:
    reconciler, _, view = reconciler_for(md_body(replicas=1))
    asyncio.run(reconciler.reconcile(KEY))
    deployment = view.children_of(KEY)[("Deployment", "iris-v1")]
    view.remember_child(KEY, ready(deployment, 10_000))

    stale = copy.deepcopy(deployment)
    assert not view.remember_child(KEY, stale)
    assert view.children_of(KEY)[("Deployment", "iris-v1")]["status"]["readyReplicas"] == 1


def test_steady_state_makes_no_writes() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1))
    client.while_applying = lambda answer: (
        view.remember_child(KEY, ready(answer, 10_000)) if answer["kind"] == "Deployment" else None
    )
    asyncio.run(reconciler.reconcile(KEY))
    asyncio.run(reconciler.reconcile(KEY))
    writes = (len(client.applied), len(client.statuses), len(client.deleted))

    asyncio.run(reconciler.reconcile(KEY))
    assert (len(client.applied), len(client.statuses), len(client.deleted)) == writes


AUTOSCALING = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70}


def owned_replicas(deployment: Body, replicas: int) -> Body:
    """A Deployment whose spec.replicas our apply set (as the apiserver records it)."""
    body = copy.deepcopy(deployment)
    body["spec"]["replicas"] = replicas
    body["metadata"]["managedFields"] = [
        {
            "manager": FIELD_MANAGER,
            "operation": "Apply",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}},
        }
    ]
    return body


def test_switching_to_autoscaling_hands_the_running_count_over_before_applying() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=4))
    asyncio.run(reconciler.reconcile(KEY))
    deployment = view.children_of(KEY)[("Deployment", "iris-v1")]
    view.remember_child(KEY, owned_replicas(ready(deployment, 10_000), 4))

    body = md_body(autoscaling=AUTOSCALING)
    body["metadata"]["resourceVersion"] = "20000"
    view.remember_model(body)
    client.applied.clear()
    client.managers.clear()
    asyncio.run(reconciler.reconcile(KEY))

    handover = client.applied[0]
    assert client.managers[0] == HANDOVER_FIELD_MANAGER
    assert handover["spec"] == {"replicas": 4}
    applied_deployment = next(m for m in client.applied[1:] if m["kind"] == "Deployment")
    assert "replicas" not in applied_deployment["spec"]
    assert client.managers[1:] == [FIELD_MANAGER] * (len(client.applied) - 1)


def test_no_handover_while_the_desired_manifest_sets_replicas_or_we_never_owned_them() -> None:
    live = owned_replicas(
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {},
         "metadata": {"name": "iris-v1", "namespace": "models"}},
        4,
    )  # fmt: skip
    with_size = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2}}
    without_size = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}
    assert replicas_handover(with_size, live) is None
    assert replicas_handover(without_size, None) is None
    never_owned = copy.deepcopy(live)
    never_owned["metadata"]["managedFields"] = []
    assert replicas_handover(without_size, never_owned) is None
    assert replicas_handover(without_size, live) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "iris-v1", "namespace": "models"},
        "spec": {"replicas": 4},
    }


def retired_deployment(version: str) -> Body:
    """A version's Deployment the plan no longer wants (the stable before a promotion)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"iris-v{version}",
            "namespace": "models",
            "resourceVersion": "50",
            "labels": naming.labels_for("iris", version, "stable"),
            "ownerReferences": [{"uid": md_body()["metadata"]["uid"]}],
        },
        "spec": {"replicas": 2},
    }


def test_a_version_out_of_traffic_is_deleted_only_after_the_scale_down_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("modeldeploy_operator.reconciler.time.monotonic", lambda: clock[0])
    body = md_body(replicas=1, rollout={"scaleDownDelay": "30s"})
    reconciler, client, view = reconciler_for(body)
    view.remember_child(KEY, retired_deployment("0"))

    asyncio.run(reconciler.reconcile(KEY))
    clock[0] += 29
    asyncio.run(reconciler.reconcile(KEY))
    assert client.deleted == []

    clock[0] += 2
    asyncio.run(reconciler.reconcile(KEY))
    assert client.deleted == [("deployments", "iris-v0")]
    assert ("Deployment", "iris-v0") not in view.children_of(KEY)


def test_a_zero_scale_down_delay_deletes_at_once() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1, rollout={"scaleDownDelay": "0s"}))
    view.remember_child(KEY, retired_deployment("0"))
    asyncio.run(reconciler.reconcile(KEY))
    assert client.deleted == [("deployments", "iris-v0")]


def test_deletions_come_after_every_apply() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1, rollout={"scaleDownDelay": "0s"}))
    view.remember_child(KEY, retired_deployment("0"))
    asyncio.run(reconciler.reconcile(KEY))
    deletes = [i for i, call in enumerate(client.calls) if call.startswith("delete")]
    applies = [i for i, call in enumerate(client.calls) if call.startswith("apply")]
    assert deletes and applies and max(applies) < min(deletes), client.calls


def test_a_child_without_our_owner_reference_is_never_deleted() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1, rollout={"scaleDownDelay": "0s"}))
    foreign = retired_deployment("0")
    foreign["metadata"]["ownerReferences"] = [{"uid": "someone-else"}]
    view.remember_child(KEY, foreign)
    asyncio.run(reconciler.reconcile(KEY))
    assert client.deleted == []


def test_a_failed_apply_deletes_nothing_writes_nothing_planned_and_retries() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1, rollout={"scaleDownDelay": "0s"}))
    view.remember_child(KEY, retired_deployment("0"))
    client.failing["Service"] = ApiError(422, "Invalid", "spec.selector: field is immutable")

    async def one_pass() -> int:
        await reconciler.reconcile(KEY)
        return len(reconciler.queue._timers)

    assert asyncio.run(one_pass()) == 1  # the key comes back after the retry delay
    assert client.deleted == []
    # Only the Degraded report: nothing the pass planned (a rollout step) is recorded.
    assert [set(status) for status in client.statuses] == [{"phase", "conditions"}]


def conditions(status: Body) -> dict[str, Body]:
    return {c["type"]: c for c in status["conditions"]}


def users_service() -> Body:
    """A Service `iris` a user made before the ModelDeployment: none of our labels or owners."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "iris", "namespace": "models", "resourceVersion": "7"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }


def test_an_object_we_do_not_control_is_never_applied_and_is_reported() -> None:
    reconciler, client, _ = reconciler_for(md_body(replicas=1))
    client.existing[("Service", "iris")] = users_service()

    async def two_passes() -> None:
        await reconciler.reconcile(KEY)
        await reconciler.reconcile(KEY)

    asyncio.run(two_passes())
    assert client.applied == [] and client.deleted == []
    degraded = conditions(client.statuses[-1])["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "ChildConflict")
    assert "Service iris" in degraded["message"]
    # One Event for the conflict, not one per pass; and the key is checked again later.
    assert [reason for reason, _ in client.events] == ["ChildConflict"]
    assert len(reconciler.queue._timers) >= 1


def test_a_watched_child_owned_by_another_object_is_never_applied() -> None:
    reconciler, client, view = reconciler_for(md_body(replicas=1))
    asyncio.run(reconciler.reconcile(KEY))
    deployment = copy.deepcopy(view.children_of(KEY)[("Deployment", "iris-v1")])
    # Same name and labels, another owner (a ModelDeployment deleted and made again, say).
    deployment["metadata"]["ownerReferences"] = [{"uid": "someone-else", "controller": True}]
    deployment["metadata"]["resourceVersion"] = "10000"
    deployment["spec"]["replicas"] = 5
    view.remember_child(KEY, deployment)
    client.existing[("Deployment", "iris-v1")] = deployment  # what the watch saw, the API holds
    client.applied.clear()

    asyncio.run(reconciler.reconcile(KEY))
    assert "Deployment" not in {m["kind"] for m in client.applied}
    degraded = conditions(client.statuses[-1])["Degraded"]
    assert degraded["reason"] == "ChildConflict" and "Deployment iris-v1" in degraded["message"]


def test_a_ghost_the_view_holds_is_no_conflict_and_is_dropped() -> None:
    """A namespace deleted and made again while a pass ran: the view kept a write's answer for
    a child the API no longer has, owned by the model's previous incarnation."""
    reconciler, client, view = reconciler_for(md_body(replicas=1))
    asyncio.run(reconciler.reconcile(KEY))
    ghost = copy.deepcopy(view.children_of(KEY)[("Deployment", "iris-v1")])
    ghost["metadata"]["ownerReferences"] = [{"uid": "deleted-incarnation", "controller": True}]
    ghost["metadata"]["resourceVersion"] = "10000"
    view.remember_child(KEY, ghost)
    client.applied.clear()

    asyncio.run(reconciler.reconcile(KEY))
    assert "Deployment" in {m["kind"] for m in client.applied}
    assert conditions(client.statuses[-1])["Degraded"]["status"] == "False"
    held = view.children_of(KEY)[("Deployment", "iris-v1")]
    assert held["metadata"]["ownerReferences"][0]["uid"] != "deleted-incarnation"


def retry_delays(reconciler: Reconciler) -> list[float]:
    """Records the delay of every retry the reconciler schedules."""
    delays: list[float] = []
    schedule = reconciler.queue.add_after

    def recording(key: Key, delay: float) -> None:
        delays.append(delay)
        schedule(key, delay)

    reconciler.queue.add_after = recording  # type: ignore[method-assign]
    return delays


@pytest.mark.parametrize(
    "error",
    [
        ApiError(422, "Invalid", "spec.selector: Invalid value: field is immutable"),
        ApiError(403, "Forbidden", 'services "iris" is forbidden: User cannot patch services'),
        ApiError(403, "Forbidden", 'admission webhook "policy.example" denied the request'),
    ],
)
def test_an_apply_the_api_refuses_is_reported_once_and_retried_with_backoff(
    error: ApiError,
) -> None:
    reconciler, client, _ = reconciler_for(md_body(replicas=1))
    delays = retry_delays(reconciler)
    client.failing["Service"] = error

    async def passes(count: int) -> None:
        for _ in range(count):
            await reconciler.reconcile(KEY)

    asyncio.run(passes(12))
    degraded = conditions(client.statuses[-1])["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")
    assert "Service iris" in degraded["message"] and error.message in degraded["message"]
    assert [reason for reason, _ in client.events] == ["ApplyFailed"]
    assert len(client.statuses) == 1
    # Exponential from 5 s, capped at 5 minutes.
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(delays) == delays[-1] == 300.0

    del client.failing["Service"]
    asyncio.run(passes(1))
    assert conditions(client.statuses[-1])["Degraded"]["status"] == "False"
    client.failing["Service"] = error
    asyncio.run(passes(1))
    assert delays[-1] == 5.0  # a success starts the backoff again


def test_a_conflict_or_a_missing_kind_is_retried_without_a_condition() -> None:
    reconciler, client, _ = reconciler_for(md_body(replicas=1))
    client.failing["Service"] = ApiError(409, "Conflict", "the object has been modified")
    asyncio.run(reconciler.reconcile(KEY))
    assert client.statuses == [] and client.events == []


ALLOWED = ("registry.example/models/",)


def with_allowed_prefixes(reconciler: Reconciler, prefixes: tuple[str, ...]) -> None:
    reconciler.settings = OperatorSettings(server_image=IMAGE, allowed_image_prefixes=prefixes)


def test_an_image_outside_the_allowed_prefixes_is_refused_and_reported() -> None:
    body = md_body(replicas=1, server={"image": "elsewhere.example/miner:1"})
    reconciler, client, _ = reconciler_for(body)
    with_allowed_prefixes(reconciler, ALLOWED)

    async def two_passes() -> None:
        await reconciler.reconcile(KEY)
        await reconciler.reconcile(KEY)

    asyncio.run(two_passes())
    assert client.applied == [] and client.deleted == []
    degraded = conditions(client.statuses[-1])["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "ImageNotAllowed")
    assert "elsewhere.example/miner:1" in degraded["message"]
    assert "registry.example/models/" in degraded["message"]
    assert [reason for reason, _ in client.events] == ["ImageNotAllowed"]


@pytest.mark.parametrize(
    "server",
    [
        {"image": "registry.example/models/iris-server:2"},
        {},  # the operator's own server image is always allowed
    ],
)
def test_allowed_prefixes_admit_their_images_and_the_operators_own(server: Body) -> None:
    reconciler, client, _ = reconciler_for(md_body(replicas=1, server=server))
    with_allowed_prefixes(reconciler, ALLOWED)
    asyncio.run(reconciler.reconcile(KEY))
    assert "Deployment" in {m["kind"] for m in client.applied}
    assert all(reason != "ImageNotAllowed" for reason, _ in client.events)
