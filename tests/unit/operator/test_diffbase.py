"""kopf's diff base is off: no copy of each watched body, and every event still arrives."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from kopf._cogs.structs import references
from kopf._core.actions import lifecycles
from kopf._core.engines import indexing
from kopf._core.reactor import inventory, processing
from modeldeploy_operator import naming
from modeldeploy_operator.controller import Controller
from modeldeploy_operator.settings import OperatorSettings

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "iris-v1",
        "namespace": "models",
        "uid": "u-1",
        "resourceVersion": "7",
        "labels": {naming.LABEL_MODEL: "iris"},
        "annotations": {"modeldeploy.dev/applied-hash": "abc"},
    },
    "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "server"}]}}},
    "status": {"readyReplicas": 1},
}


def test_kopf_keeps_no_essence_of_a_watched_body() -> None:
    storage = Controller(OperatorSettings(server_image="img")).kopf_settings().persistence
    body = kopf.Body(DEPLOYMENT)
    assert storage.diffbase_storage.build(body=body) == {}
    assert storage.diffbase_storage.fetch(body=body) is None


def test_the_controller_has_no_handler_that_would_need_a_diff_base() -> None:
    """Change handlers (on.create/update/delete/resume) and daemons or timers diff an object
    against its diff base: with none stored, they would see every event as no change."""
    registry = Controller(OperatorSettings(server_image="img")).registry
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()


def test_a_watch_event_still_reaches_the_view_and_the_queue_through_kopf() -> None:
    controller = Controller(OperatorSettings(server_image="img"))
    resource = references.Resource("apps", "v1", "deployments", kind="Deployment", namespaced=True)

    async def deliver() -> None:
        await processing.process_resource_event(
            lifecycle=lifecycles.all_at_once,
            indexers=indexing.OperatorIndexers(),
            registry=controller.registry,
            settings=controller.kopf_settings(),
            memories=inventory.ResourceMemories(),
            memobase=kopf.Memo(),
            resource=resource,
            raw_event={"type": "MODIFIED", "object": DEPLOYMENT},
            event_queue=asyncio.Queue(),
        )

    asyncio.run(deliver())
    held = controller.view.children_of(("models", "iris"))
    assert held[("Deployment", "iris-v1")]["status"] == {"readyReplicas": 1}
    assert len(controller.queue) == 1
