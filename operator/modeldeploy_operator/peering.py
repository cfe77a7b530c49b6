"""Which replica reconciles when several run (high availability with kopf peering).

kopf pauses its own handlers when a live peer with a higher (or equal) priority exists, but the
reconcile workers here are the operator's own tasks, so they follow the same rule, read from the
same peering object's keep-alives: a replica reconciles only while no other live peer has a
priority at least as high as its own. kopf also closes a standby's watch streams, so a
replica that takes over re-lists before its workers write (controller.py). Reads only: kopf
writes the keep-alives.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any


def own_identity() -> str:
    """Unique per replica and readable in the peering object: the chart passes the pod name as
    POD_ID; elsewhere host and process id."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}@{os.getpid()}"


def random_priority() -> int:
    # Distinct per replica: kopf pauses *every* replica when the top priorities are equal.
    return random.randint(1, 1_000_000)


def _live(info: Mapping[str, Any], now: datetime) -> bool:
    try:
        lastseen = datetime.fromisoformat(str(info["lastseen"]))
        lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
    except (KeyError, ValueError):
        return False
    if lastseen.tzinfo is None:
        lastseen = lastseen.replace(tzinfo=UTC)
    return lastseen + lifetime >= now


def is_active(peers: Mapping[str, Any], identity: str, priority: int, now: datetime) -> bool:
    """kopf's rule: paused while any other live peer's priority is at least ours."""
    for peer, info in peers.items():
        if peer == identity or not isinstance(info, Mapping) or not _live(info, now):
            continue
        if int(info.get("priority", 0)) >= priority:
            return False
    return True
