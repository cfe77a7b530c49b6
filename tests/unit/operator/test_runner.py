"""The operator process's HTTP endpoints: the Alertmanager receiver on its own port, answered by
the controller (which refuses until its retraining loop leads)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from modeldeploy_operator.controller import Controller
from modeldeploy_operator.retraining.receiver import PATH
from modeldeploy_operator.runner import serve_alert_receiver
from modeldeploy_operator.settings import OperatorSettings

from tests.support.ports import free_port


def test_the_receiver_is_served_on_its_port_and_a_controller_not_leading_answers_503(
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    asyncio.run(_served(token))


async def _served(token: Path) -> None:
    port = free_port()
    controller = Controller(OperatorSettings(server_image="img"))
    runner = await serve_alert_receiver(controller, token, port)
    try:
        async with httpx.AsyncClient() as http:
            url = f"http://127.0.0.1:{port}{PATH}"
            body = {"version": "4", "alerts": []}
            assert (await http.post(url, json=body)).status_code == 401
            answer = await http.post(url, json=body, headers={"Authorization": "Bearer t"})
            assert answer.status_code == 503 and "stands by" in answer.text
    finally:
        await runner.cleanup()
