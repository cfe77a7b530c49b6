"""Alertmanager's webhook notifications, read. Pure: a request body → the alerts it carries, and
which of them an `alertmanager` trigger names.

Alertmanager sends the whole group on every notification (each `group_interval` while it
changes, each `repeat_interval` while it does not, and once resolved): one firing of an alert is
identified by its fingerprint and `startsAt`, which the repeats keep, so the policy's plan can
start at most one run per firing (`policy.plan_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from modeldeploy_operator.api.retraining import AlertmanagerTrigger, AlertOccurrence

ALERT_NAME_LABEL: Final = "alertname"
FIRING: Final = "firing"
# The notification format Alertmanager's webhook has sent since 0.x; a future one is refused
# rather than misread.
WEBHOOK_VERSION: Final = "4"


class MalformedNotification(ValueError):
    """A body that is not an Alertmanager webhook notification (the message says why)."""


@dataclass(frozen=True)
class Alert:
    """One alert of a notification."""

    fingerprint: str
    starts_at: datetime
    firing: bool
    labels: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.labels.get(ALERT_NAME_LABEL, "")

    @property
    def occurrence(self) -> AlertOccurrence:
        return AlertOccurrence(
            name=self.name, fingerprint=self.fingerprint, starts_at=self.starts_at
        )


def _alert(item: Any, index: int) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(item, dict):
        raise MalformedNotification(f"{where} is not an object")
    labels = item.get("labels")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise MalformedNotification(f"{where}.labels is not an object of strings")
    fingerprint = item.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise MalformedNotification(f"{where}.fingerprint is missing")
    status = item.get("status")
    if status not in (FIRING, "resolved"):
        raise MalformedNotification(f"{where}.status is {status!r}, not firing or resolved")
    try:
        starts_at = datetime.fromisoformat(str(item.get("startsAt")))
    except ValueError as err:
        raise MalformedNotification(f"{where}.startsAt is not a time") from err
    if starts_at.tzinfo is None:
        raise MalformedNotification(f"{where}.startsAt has no time zone")
    return Alert(fingerprint, starts_at, status == FIRING, dict(labels))


def parse_notification(body: Any) -> list[Alert]:
    """The alerts of a webhook notification (JSON already decoded), or MalformedNotification."""
    if not isinstance(body, dict):
        raise MalformedNotification("the body is not a JSON object")
    if body.get("version") != WEBHOOK_VERSION:
        raise MalformedNotification(
            f"version {body.get('version')!r}: this receiver reads version {WEBHOOK_VERSION}"
        )
    items = body.get("alerts")
    if not isinstance(items, list):
        raise MalformedNotification("alerts is not a list")
    return [_alert(item, i) for i, item in enumerate(items)]


def named_by(trigger: AlertmanagerTrigger, alert: Alert) -> bool:
    """Whether the trigger names this alert: its name, and every matcher's label and value."""
    return alert.name == trigger.alert_name and all(
        alert.labels.get(label) == value for label, value in trigger.matchers.items()
    )
