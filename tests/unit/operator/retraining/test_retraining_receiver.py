"""Alertmanager's webhook notifications: how they are read, and what the receiver answers (401
without the token, 400 for another body, 503 on a standby or a failed pass, 200 once acted on),
against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from modeldeploy_operator.retraining.alerts import (
    Alert,
    MalformedNotification,
    parse_notification,
)
from modeldeploy_operator.retraining.receiver import PATH, NotLeading, receiver_app

TOKEN = "s3cr3t-t0ken"


def notification(**changes: Any) -> dict[str, Any]:
    """A notification as Alertmanager 0.25 sends it (webhook version 4)."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "ModelDrift", "namespace": "models"},
        "annotations": {"summary": "drift"},
        "startsAt": "2026-12-01T08:30:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "4f2a9c0d1e3b5a77",
    }
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="ModelDrift"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "modeldeploy",
        "groupLabels": {"alertname": "ModelDrift"},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    body.update(changes)
    return body


def test_a_notification_is_read() -> None:
    [alert] = parse_notification(notification())
    assert alert == Alert(
        "4f2a9c0d1e3b5a77",
        datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC),
        True,
        {"alertname": "ModelDrift", "namespace": "models"},
    )
    assert alert.name == "ModelDrift"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        (notification(version="5"), "version '5'"),
        (notification(alerts={}), "alerts is not a list"),
        (notification(alerts=[1]), r"alerts\[0\] is not an object"),
        (notification(alerts=[{"labels": {"a": 1}}]), r"alerts\[0\].labels"),
        (
            notification(alerts=[{"labels": {}, "status": "firing", "startsAt": "now"}]),
            "fingerprint is missing",
        ),
        (
            notification(
                alerts=[{"labels": {}, "fingerprint": "f", "status": "x", "startsAt": "now"}]
            ),
            "status is 'x'",
        ),
        (
            notification(
                alerts=[{"labels": {}, "fingerprint": "f", "status": "firing", "startsAt": "x"}]
            ),
            "startsAt is not a time",
        ),
    ],
)
def test_what_is_not_a_notification(body: Any, message: str) -> None:
    with pytest.raises(MalformedNotification, match=message):
        parse_notification(body)


class Loop:
    """Stands in for the retraining loop: records the alerts, or raises what it is told."""

    def __init__(self, error: Exception | None = None) -> None:
        self.delivered: list[list[Alert]] = []
        self.error = error

    async def deliver(self, alerts: list[Alert]) -> None:
        if self.error is not None:
            raise self.error
        self.delivered.append(alerts)


async def post(
    loop: Loop, token_file: Path, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    async with TestClient(TestServer(receiver_app(loop.deliver, token_file))) as client:
        answer = await client.post(PATH, data=body, headers=headers)
        return answer.status, await answer.text()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")  # a Secret's value often ends with a newline
    return path


BODY = json.dumps(notification()).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_without_the_token_nothing_is_delivered(token_file: Path, headers: dict[str, str]) -> None:
    loop = Loop()
    status, _ = asyncio.run(post(loop, token_file, BODY, headers))
    assert status == 401 and loop.delivered == []


def test_an_empty_token_file_lets_nobody_in(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("")
    loop = Loop()
    status, _ = asyncio.run(post(loop, empty, BODY, {"Authorization": "Bearer "}))
    assert status == 401 and loop.delivered == []


AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}


def test_the_token_delivers_and_a_rotated_token_takes_effect(token_file: Path) -> None:
    loop = Loop()
    assert asyncio.run(post(loop, token_file, BODY, AUTHORIZED))[0] == 200
    [[alert]] = loop.delivered
    assert alert.fingerprint == "4f2a9c0d1e3b5a77"
    token_file.write_text("rotated")
    assert asyncio.run(post(loop, token_file, BODY, AUTHORIZED))[0] == 401
    assert asyncio.run(post(loop, token_file, BODY, {"Authorization": "Bearer rotated"}))[0] == 200


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe", json.dumps(notification(version="3")).encode()]
)
def test_a_malformed_body_is_a_400(token_file: Path, body: bytes) -> None:
    loop = Loop()
    status, text = asyncio.run(post(loop, token_file, body, AUTHORIZED))
    assert status == 400 and "not an Alertmanager notification" in text
    assert loop.delivered == []


@pytest.mark.parametrize("error", [NotLeading(), RuntimeError("apiserver away")])
def test_a_standby_or_a_failed_pass_answers_503_so_alertmanager_retries(
    token_file: Path, error: Exception
) -> None:
    status, _ = asyncio.run(post(Loop(error), token_file, BODY, AUTHORIZED))
    assert status == 503


def test_an_unreadable_token_file_is_a_503(tmp_path: Path) -> None:
    status, _ = asyncio.run(post(Loop(), tmp_path / "absent", BODY, AUTHORIZED))
    assert status == 503
