"""The controller's background tasks when the apiserver cannot be reached."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from modeldeploy_operator import controller as controller_module
from modeldeploy_operator import kinds
from modeldeploy_operator.controller import Controller, peering_poll_delay
from modeldeploy_operator.kube import Credentials, KubeClient
from modeldeploy_operator.reconciler import Reconciler
from modeldeploy_operator.runner import serve_observability
from modeldeploy_operator.settings import OperatorSettings

from tests.support.ports import free_port


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
