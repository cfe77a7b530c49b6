"""The controller's background tasks when the apiserver cannot be reached."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import kopf
import pytest
from modeldeploy_operator import controller as controller_module
from modeldeploy_operator import kinds, naming
from modeldeploy_operator.controller import Controller, peering_poll_delay
from modeldeploy_operator.kinds import Kind
from modeldeploy_operator.kube import Credentials, KubeClient
from modeldeploy_operator.reconciler import Reconciler
from modeldeploy_operator.runner import run_async, serve_observability
from modeldeploy_operator.settings import OperatorSettings
from prometheus_client import REGISTRY

from tests.support.ports import free_port
from tests.unit.operator.factories import md_body
from tests.unit.operator.fake_apiserver import FakeApiserver, Request, running


def test_connection_errors_end_neither_peering_nor_resync_and_healthz_stays_ok(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(controller_module, "PEERING_POLL_SECONDS", 0.01)
    settings = OperatorSettings(server_image="img", peering="modeldeploy", resync_seconds=0.01)

    async def scenario() -> tuple[int, str, list[str]]:
        controller = Controller(settings)
        # Nothing listens there: every request fails with aiohttp.ClientConnectorError.
        client = KubeClient(Credentials(f"https://127.0.0.1:{free_port()}", False))
        requested: list[str] = []
        request = client._request

        async def recorded(method: str, path: str, **kw: Any) -> Any:
            requested.append(path)
            return await request(method, path, **kw)

        client._request = recorded  # type: ignore[method-assign]
        controller._client = client
        controller._reconciler = Reconciler(client, controller.view, controller.queue, settings)
        controller._tasks = [
            asyncio.create_task(controller._follow_peering(), name="peering"),
            asyncio.create_task(controller._resync(), name="resync"),
        ]
        port = free_port()
        observability = await serve_observability(controller, port)

        def refused(path_part: str) -> int:
            return sum(path_part in path for path in requested)

        try:
            # Until each task has met the error several times, or one has ended (the timeout
            # only guards against hanging).
            async with asyncio.timeout(60):
                while refused(kinds.CLUSTER_PEERING.plural) < 3 or refused("/apis/") < 6:
                    if any(task.done() for task in controller._tasks):
                        break
                    await asyncio.sleep(0.01)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as resp,
            ):
                health = resp.status, await resp.text()
            stopped = [task.get_name() for task in controller._tasks if task.done()]
        finally:
            await observability.cleanup()
            await controller._cleanup()
        return *health, stopped

    status, text, stopped = asyncio.run(scenario())
    assert stopped == []
    assert (status, text) == (200, "ok")


def test_the_peering_poll_backs_off_while_the_apiserver_does_not_answer() -> None:
    assert [peering_poll_delay(n) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert peering_poll_delay(10_000) == 30.0


def watch_requests(controller: Controller) -> dict[str, list[dict[str, list[str]]]]:
    """The query of every list and watch request kopf makes for each resource the controller
    watches, by plural: kopf's own listing and watch-stream code, with the apiserver replaced
    by an empty answer."""
    from kopf._cogs.clients import api as kopf_api
    from kopf._cogs.clients import fetching, watching
    from kopf._cogs.structs import references

    settings = controller.kopf_settings()
    requested: dict[str, list[dict[str, list[str]]]] = {}

    async def get(url: str, **_: Any) -> dict[str, Any]:
        requested.setdefault(url.split("?")[0].rsplit("/", 1)[-1], []).append(query(url))
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def stream(url: str, **_: Any) -> AsyncIterator[Any]:
        requested.setdefault(url.split("?")[0].rsplit("/", 1)[-1], []).append(query(url))
        for event in ():
            yield event

    def query(url: str) -> dict[str, list[str]]:
        return parse_qs(urlsplit(url).query)

    async def list_and_watch() -> None:
        never_paused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for selector in controller.registry._watching.get_all_selectors():
            # The handlers name each resource by group, version and plural (`any_name`).
            plural = selector.plural or selector.any_name
            assert selector.group is not None and selector.version and plural
            scoped = plural != kinds.CRD.plural
            resource = references.Resource(
                selector.group, selector.version, plural, namespaced=scoped
            )
            async for _ in fetching.fetch_objs(
                settings=settings,
                resource=resource,
                namespace="ns" if scoped else None,
                logger=logging.getLogger(),
            ):
                pass
            async for _ in watching.watch_objs(
                settings=settings,
                resource=resource,
                namespace="ns" if scoped else None,
                operator_pause_waiter=never_paused,
            ):
                pass

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kopf_api, "get", get)
        patch.setattr(kopf_api, "stream", stream)
        asyncio.run(list_and_watch())
    return requested


def own_watch_requests(settings: OperatorSettings) -> list[Request]:
    """The requests of the controller's own watches (the optional kinds'), run against an
    in-process apiserver that serves every kind, until each has listed and started watching."""
    api = FakeApiserver([*kinds.CHILD_KINDS, kinds.MODEL_DEPLOYMENT, kinds.POD])

    async def scenario() -> list[Request]:
        controller = Controller(settings)
        async with running(api) as url:
            client = KubeClient(Credentials(url, False))
            controller._start_watches(client)
            try:
                await wait_until(
                    "every watch lists and watches",
                    lambda: all(
                        any(r.kind == w.kind and "watch" in r.query for r in api.requests)
                        for w in controller.watches
                    ),
                )
            finally:
                await controller._cleanup()
                await client.close()
        return api.requests

    return asyncio.run(scenario())


def test_the_apiserver_selects_our_children_and_pods_for_the_watches() -> None:
    """Every Pod, Deployment, Service, HPA... of the cluster would otherwise reach the operator
    (and kopf's per-object state) only to be dropped by a client-side filter."""
    settings = OperatorSettings(server_image="img", namespaces=("ns",))
    requested = watch_requests(Controller(settings))
    for request in own_watch_requests(settings):
        assert request.kind is not None and request.namespace == "ns"
        query = {name: [value] for name, value in request.query.items()}
        requested.setdefault(request.kind.plural, []).append(query)
    ours = [kinds.POD.plural, *(child.plural for child in kinds.CHILD_KINDS)]
    assert sorted(requested) == sorted([*ours, kinds.MODEL_DEPLOYMENT.plural, kinds.CRD.plural])
    for plural in ours:
        listing, watch = requested[plural][:2]
        assert "watch" not in listing and watch["watch"] == ["true"]
        assert listing["labelSelector"] == watch["labelSelector"] == [naming.MANAGED_SELECTOR]
    # ModelDeployments carry no label of ours; CRDs are the other projects' (discovery).
    for plural in (kinds.MODEL_DEPLOYMENT.plural, kinds.CRD.plural):
        assert all("labelSelector" not in request for request in requested[plural])


def test_a_replica_says_whether_it_reconciles() -> None:
    def leading() -> float | None:
        return REGISTRY.get_sample_value("modeldeploy_operator_leading")

    Controller(OperatorSettings(server_image="img", peering="md"))
    assert leading() == 0  # until the peering object says it leads
    Controller(OperatorSettings(server_image="img"))
    assert leading() == 1


def test_a_replica_taking_over_drops_a_model_deleted_while_it_stood_by() -> None:
    """kopf paused the standby's watches: the deletion never came as an event. Before its
    workers may write, the new leader's view must agree with the API again."""
    settings = OperatorSettings(server_image="img", peering="md", namespaces=("ns",))
    ghost = {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "ghost", "namespace": "ns", "uid": "u-1", "resourceVersion": "5"},
    }

    async def scenario() -> tuple[dict[Any, Any], list[str]]:
        controller = Controller(settings)
        controller.view.remember_model(ghost)
        client = KubeClient(Credentials("https://apiserver.invalid", False))
        requested: list[str] = []

        async def answer(method: str, path: str, **_: Any) -> Any:
            requested.append(path)
            if kinds.PEERING.plural in path:
                return {"items": [{"status": {}}]}  # no other peer: this replica leads
            return {"kind": "List", "items": [], "metadata": {"resourceVersion": "10"}}

        client._request = answer  # type: ignore[method-assign]
        controller._client = client
        controller._reconciler = Reconciler(client, controller.view, controller.queue, settings)
        peering = asyncio.create_task(controller._follow_peering())
        try:
            async with asyncio.timeout(30):
                await controller._active.wait()
            return dict(controller.view.models), requested
        finally:
            peering.cancel()
            await asyncio.gather(peering, return_exceptions=True)
            await client.close()

    models, requested = asyncio.run(scenario())
    assert models == {}
    assert kinds.MODEL_DEPLOYMENT.path("ns") in requested


def test_a_burst_of_crd_events_looks_once_and_cleanup_ends_the_look() -> None:
    """An install brings its CRDs together (a dozen events at operator start): one rediscovery
    serves them all, and stopping the operator ends it before the client closes (a look left
    running met a closed session and failed the shutdown)."""
    settings = OperatorSettings(server_image="img")

    async def scenario() -> tuple[int, int, bool]:
        controller = Controller(settings)
        client = KubeClient(Credentials(f"https://127.0.0.1:{free_port()}", False))
        controller._client = client
        reconciler = Reconciler(client, controller.view, controller.queue, settings)
        controller._reconciler = reconciler
        looks = 0

        async def discover() -> bool:
            nonlocal looks
            looks += 1
            return False

        reconciler.discover_optional_kinds = discover  # type: ignore[method-assign]
        for _ in range(12):
            controller._rediscover_soon()
        await asyncio.sleep(1.5)  # past the first look, before the second
        first_looks = looks
        running = [t for t in asyncio.all_tasks() if t.get_name() == "rediscover"]
        await controller._cleanup()
        ended = all(t.done() for t in running)
        return first_looks, len(running), ended

    first_looks, running, ended = asyncio.run(scenario())
    assert (first_looks, running) == (1, 1)
    assert ended


def test_kopf_retries_a_failed_request_soon_and_for_as_long_as_its_default() -> None:
    """A watch reconnecting while the apiserver restarts must find it within a couple of seconds
    of its return (kopf's default backoffs grow to 21 s; bench/chaos.py `apiserver` measures the
    effect), and must not escalate an error sooner than kopf's default would."""
    ours = list(
        Controller(OperatorSettings(server_image="img")).kopf_settings().networking.error_backoffs
    )
    default = kopf.OperatorSettings().networking.error_backoffs
    assert isinstance(default, tuple)
    assert max(ours) <= 2.0
    assert sum(ours) >= sum(default)


def crd_event_handler(controller: Controller) -> Any:
    """The kopf handler the controller registered for CRD events."""
    [handler] = [
        h
        for h in controller.registry._watching.get_all_handlers()
        if h.selector is not None and kinds.CRD.plural in (h.selector.plural, h.selector.any_name)
    ]
    return handler.fn


def test_a_model_deleted_while_its_crds_storage_was_replaced_leaves_the_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watches the old storage served went silent; when they resume, the new watch cache
    knows no version that old (410) and kopf re-lists, which adds and updates but never deletes.
    A model deleted in between would stay in the view (and a pass would write for it) until the
    next resync, unless the controller re-lists itself once the watches have resumed."""
    monkeypatch.setattr(controller_module, "STORAGE_REPLACED_RELIST_DELAY", 0.0, raising=False)
    settings = OperatorSettings(server_image="img", namespaces=("ns",))
    gone = {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "gone", "namespace": "ns", "uid": "u-1", "resourceVersion": "5"},
    }

    def crd(generation: int) -> dict[str, Any]:
        model = kinds.MODEL_DEPLOYMENT
        return {
            "type": "MODIFIED",
            "object": {
                "metadata": {"name": f"{model.plural}.{model.group}", "generation": generation},
                "spec": {"group": model.group},
            },
        }

    async def scenario() -> dict[Any, Any]:
        controller = Controller(settings)
        controller.view.remember_model(gone)
        client = KubeClient(Credentials("https://apiserver.invalid", False))

        async def answer(method: str, path: str, **_: Any) -> Any:
            return {"kind": "List", "items": [], "metadata": {"resourceVersion": "30"}}

        client._request = answer  # type: ignore[method-assign]
        controller._client = client
        controller._reconciler = Reconciler(client, controller.view, controller.queue, settings)
        controller._started = True
        handler = crd_event_handler(controller)
        try:
            await handler(event=crd(1))  # as listed when the operator started
            await handler(event=crd(2))  # the spec changed: the storage is replaced
            # Only a guard against hanging.
            async with asyncio.timeout(30):
                while controller.view.models:
                    await asyncio.sleep(0.01)
            return dict(controller.view.models)
        finally:
            await controller._cleanup()
            await client.close()

    assert asyncio.run(scenario()) == {}


SERVED_WITH_MONITORING = (
    kinds.MODEL_DEPLOYMENT, kinds.DEPLOYMENT, kinds.SERVICE, kinds.HPA, kinds.POD, kinds.EVENT,
    kinds.POD_MONITOR, kinds.PROMETHEUS_RULE,
    kinds.RETRAINING_POLICY, kinds.RETRAINING_RUN, kinds.JOB,
)  # fmt: skip


def kubeconfig_for(server: str, path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    return path


async def wait_until(what: str, condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Until `condition()` holds; the timeout only guards against hanging."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


def test_an_optional_crd_removed_and_restored_while_the_operator_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Prometheus Operator's CRDs are deleted while the operator runs, then installed again.
    kopf's own watch of a kind met 404 and re-raised it: the operator ended (or lived on with its
    workers stopped). Here the whole operator (kopf, the controller, its client) runs against an
    in-process apiserver: it must live on and keep reconciling, say on the model that the kind
    is missing, and once the CRDs are back, watch the kind again and re-create the children."""
    api = FakeApiserver(SERVED_WITH_MONITORING)
    api.put(
        kinds.MODEL_DEPLOYMENT, {**md_body("iris"), "metadata": {"name": "iris", "namespace": "ns"}}
    )
    metrics_port = free_port()
    settings = OperatorSettings(server_image="img", namespaces=("ns",), metrics_port=metrics_port)
    monitoring = (kinds.POD_MONITOR, kinds.PROMETHEUS_RULE)

    def children(kind: Kind) -> list[str]:
        return [b["metadata"]["name"] for b in api.objects(kind)]

    def deployment_replicas() -> int | None:
        body = api.get(kinds.DEPLOYMENT, "ns", "iris-v1")
        return body["spec"].get("replicas") if body else None

    def status_monitoring() -> str:
        body = api.get(kinds.MODEL_DEPLOYMENT, "ns", "iris")
        return str((body or {}).get("status", {}).get("monitoring", ""))

    async def healthz() -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{metrics_port}/healthz") as resp,
        ):
            return resp.status

    async def scenario() -> None:
        async with running(api) as url:
            monkeypatch.setenv("KUBECONFIG", str(kubeconfig_for(url, tmp_path / "kubeconfig")))
            await operate()

    async def operate() -> None:
        stop = asyncio.Event()
        operator = asyncio.create_task(run_async(settings, stop))
        try:
            await wait_until(
                "the monitoring children are created",
                lambda: all(children(k) == ["iris"] for k in monitoring),
            )
            await asyncio.gather(*(api.remove_kind(kind) for kind in monitoring))
            # Long enough for every watch of the removed kinds to meet 404 a few times.
            await asyncio.sleep(3)
            assert not operator.done(), "the operator ended when the CRDs were removed"
            assert await healthz() == 200
            # A change made meanwhile is reconciled, and the model says what is missing.
            model = api.get(kinds.MODEL_DEPLOYMENT, "ns", "iris")
            assert model is not None
            api.put(kinds.MODEL_DEPLOYMENT, {**model, "spec": {**model["spec"], "replicas": 2}})
            await wait_until("the change is reconciled", lambda: deployment_replicas() == 2)
            await wait_until(
                "status says the CRDs are missing",
                lambda: "monitoring.coreos.com CRDs not installed" in status_monitoring(),
            )
            for kind in monitoring:
                api.serve_kind(kind)
            await wait_until(
                "the monitoring children are re-created",
                lambda: all(children(k) == ["iris"] for k in monitoring),
            )
            # The kinds are watched again: a child deleted by hand comes back.
            api.delete(kinds.POD_MONITOR, "ns", "iris")
            await wait_until(
                "the deleted PodMonitor is re-created",
                lambda: children(kinds.POD_MONITOR) == ["iris"],
            )
            assert not operator.done()
            assert await healthz() == 200
        finally:
            stop.set()
            ended_cleanly = await operator
        assert ended_cleanly

    asyncio.run(scenario())


def test_a_standby_keeps_its_view_of_the_optional_kinds_but_reconciles_nothing() -> None:
    """The controller's own watches run on a standby too (unlike kopf's, paused there): they
    keep its view current, and its workers still write nothing until it leads."""
    settings = OperatorSettings(server_image="img", namespaces=("ns",), peering="md")
    api = FakeApiserver([kinds.POD_MONITOR])
    labels = {naming.LABEL_MANAGED_BY: naming.MANAGER, naming.LABEL_MODEL: "iris"}

    async def scenario() -> tuple[bool, list[Any]]:
        controller = Controller(settings)
        reconciled: list[Any] = []
        async with running(api) as url:
            client = KubeClient(Credentials(url, False))
            reconciler = Reconciler(client, controller.view, controller.queue, settings)

            async def reconcile(key: Any) -> None:
                reconciled.append(key)

            reconciler.reconcile = reconcile  # type: ignore[method-assign]
            controller._client, controller._reconciler = client, reconciler
            controller._tasks.append(
                asyncio.create_task(controller.queue.run_worker(controller._process))
            )
            controller._start_watches(client)
            try:
                api.put(
                    kinds.POD_MONITOR,
                    {"metadata": {"name": "iris", "namespace": "ns", "labels": labels}},
                )
                await wait_until(
                    "the view holds the PodMonitor", lambda: bool(controller.view.children)
                )
                await asyncio.sleep(0.5)
                standby_reconciled = bool(reconciled)
                controller._active.set()  # as the peering poll does when it leads
                await wait_until("the leader reconciles", lambda: bool(reconciled))
            finally:
                await controller._cleanup()
                await client.close()
        return standby_reconciled, reconciled

    standby_reconciled, reconciled = asyncio.run(scenario())
    assert not standby_reconciled
    assert reconciled == [("ns", "iris")]
