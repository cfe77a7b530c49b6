"""The operator's Alertmanager receiver, notified by a real Alertmanager (Debian
`prometheus-alertmanager`), with the real retraining loop behind it and a recording stand-in of
the apiserver (the runs it applies are listed back, finished at once, so only the de-duplication
can stop a second run: the cooldown is 1 s).

- An alert posted to Alertmanager's API (POST /api/v2/alerts), routed to the receiver with the
  bearer token in `http_config.authorization`, makes exactly one RetrainingRun, although
  Alertmanager notifies again every couple of seconds (group_interval 1s, repeat_interval 2s).
- A route whose receiver sends a wrong token is refused: Alertmanager counts the failed
  notifications, and nothing reaches the loop.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from aiohttp import web
from modeldeploy_operator.kinds import Kind
from modeldeploy_operator.kube import KubeClient
from modeldeploy_operator.retraining.alerts import Alert
from modeldeploy_operator.retraining.loop import RetrainingLoop
from modeldeploy_operator.retraining.receiver import PATH, receiver_app
from modeldeploy_operator.settings import OperatorSettings

from tests.support.ports import free_port
from tests.unit.operator.retraining.retraining_models import EVALUATOR_IMAGE, policy, target

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "the-receivers-token"

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        ALERTMANAGER is None, reason="the Alertmanager binary (Debian: prometheus-alertmanager)"
    ),
]


class ListedBack:
    """The apiserver calls the loop makes: what it applies is listed back (runs finished at
    once), status patches are kept."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.runs: list[dict[str, Any]] = []

    async def list(self, kind: Kind, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return copy.deepcopy(self.objects.get(kind.kind, []))

    async def apply(self, manifest: dict[str, Any]) -> None:
        self.runs.append(manifest)
        finished = {**manifest, "status": {"phase": "Failed", "reason": "TrainingFailed"}}
        self.objects.setdefault(manifest["kind"], []).append(finished)

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        for body in self.objects[kind.kind]:
            if body["metadata"]["name"] == name:
                body["status"] = {k: v for k, v in status.items() if v is not None}

    async def post_event(self, *_: Any, **__: Any) -> None:
        """Events are not looked at here."""


def alertmanager_config(receiver_url: str, token_file: Path, wrong_token_file: Path) -> str:
    def webhook(name: str, credentials: Path) -> dict[str, Any]:
        return {
            "name": name,
            "webhook_configs": [
                {
                    "url": receiver_url,
                    "send_resolved": True,
                    "http_config": {
                        "authorization": {"type": "Bearer", "credentials_file": str(credentials)}
                    },
                }
            ],
        }

    return yaml.safe_dump(
        {
            "route": {
                "receiver": "modeldeploy",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "2s",
                "routes": [{"receiver": "impostor", "matchers": ['alertname="Impostor"']}],
            },
            "receivers": [
                webhook("modeldeploy", token_file),
                webhook("impostor", wrong_token_file),
            ],
        }
    )


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_repeated_notifications_make_one_run_and_a_wrong_token_is_refused(tmp_path: Path) -> None:
    asyncio.run(_one_run(tmp_path))


async def _one_run(tmp_path: Path) -> None:
    assert ALERTMANAGER is not None
    token_file, wrong = tmp_path / "token", tmp_path / "wrong-token"
    token_file.write_text(TOKEN)
    wrong.write_text("not-the-token")
    triggers = {"alertmanager": {"alertName": "ModelDrift", "matchers": {"namespace": "models"}}}
    guards = {"cooldown": "1s", "maxRuns": 100, "window": "1h", "suspendAfterFailures": 100}
    body = policy(triggers=triggers, guards=guards).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    md = target().model_dump(mode="json", by_alias=True, exclude_none=True)
    kube = ListedBack({"RetrainingPolicy": [body], "ModelDeployment": [md]})
    loop = RetrainingLoop(cast(KubeClient, kube), OperatorSettings(server_image=EVALUATOR_IMAGE))
    delivered: list[list[Alert]] = []

    async def deliver(alerts: list[Alert]) -> None:
        delivered.append(alerts)
        await loop.deliver(alerts)

    leading = asyncio.Event()
    leading.set()
    looping = asyncio.create_task(loop.run(leading))
    port = free_port()
    runner = web.AppRunner(receiver_app(deliver, token_file))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver_url = f"http://127.0.0.1:{port}{PATH}"

    config = tmp_path / "alertmanager.yml"
    config.write_text(alertmanager_config(receiver_url, token_file, wrong))
    am_port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    am = f"http://127.0.0.1:{am_port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def ready() -> bool:
                try:
                    return (await http.get(f"{am}/-/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, 30, "Alertmanager ready")
            alerts = [
                {"labels": {"alertname": "ModelDrift", "namespace": "models", "severity": "page"}},
                {"labels": {"alertname": "Impostor", "namespace": "models"}},
            ]
            answer = await http.post(f"{am}/api/v2/alerts", json=alerts)
            assert answer.status_code == 200, answer.text

            async def repeated() -> bool:
                return len(delivered) >= 4

            await eventually(repeated, 60, "Alertmanager to notify the receiver four times")

            async def impostor_refused() -> bool:
                metrics = (await http.get(f"{am}/metrics")).text
                return any(
                    line.startswith("alertmanager_notifications_failed_total")
                    and 'integration="webhook"' in line
                    and not line.endswith(" 0")
                    for line in metrics.splitlines()
                )

            await eventually(impostor_refused, 30, "Alertmanager to count a refused notification")
            wrong_answer = await http.post(
                receiver_url, json={}, headers={"Authorization": "Bearer not-the-token"}
            )
            assert wrong_answer.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        looping.cancel()
        await asyncio.gather(looping, return_exceptions=True)
        await runner.cleanup()

    assert len(kube.runs) == 1, [r["metadata"]["name"] for r in kube.runs]
    trigger = kube.runs[0]["spec"]["trigger"]
    assert trigger["source"] == "alertmanager" and trigger["alert"]["name"] == "ModelDrift"
    fingerprints = {a.fingerprint for batch in delivered for a in batch}
    assert fingerprints == {trigger["alert"]["fingerprint"]}  # the impostor never got through
