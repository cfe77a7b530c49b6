"""Counting write requests from the apiserver's own audit log (the local cluster records every
write and every watch, see cluster/kwok/audit-policy.yaml), so "zero writes" is measured outside
the operator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A link cluster/up.sh makes to the apiserver's audit log (kwokctl names its directory after the
# cluster, whose name is the checkout's own: cluster/node/env.sh).
AUDIT_LOG = ROOT / ".cluster" / "audit.log"
OPERATOR_AGENTS = ("modeldeploy-operator/", "kopf/")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Write:
    verb: str
    resource: str
    name: str
    subresource: str
    user_agent: str
    received: datetime  # when the apiserver received the request


class AuditLog:
    def __init__(self, path: Path = AUDIT_LOG) -> None:
        self.path = path

    @classmethod
    def beside(cls, kubeconfig: Path) -> AuditLog:
        """The audit log of the cluster whose kubeconfig this is: cluster/up.sh links it beside
        the kubeconfig, in the checkout that started the cluster (which may not be this one)."""
        return cls(kubeconfig.parent / AUDIT_LOG.name)

    @property
    def available(self) -> bool:
        return self.path.exists()

    def mark(self) -> int:
        """An offset: writes after it are counted by `writes_since`."""
        return self.path.stat().st_size if self.path.exists() else 0

    def writes_since(self, offset: int, namespace: str) -> list[Write]:
        writes: list[Write] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                event = json.loads(line)
                ref = event.get("objectRef", {})
                agent = event.get("userAgent", "")
                if (
                    event.get("stage") == "ResponseComplete"
                    and event.get("verb") in WRITE_VERBS
                    and ref.get("namespace") == namespace
                    and agent.startswith(OPERATOR_AGENTS)
                ):
                    writes.append(
                        Write(
                            event["verb"],
                            ref.get("resource", ""),
                            ref.get("name", ""),
                            ref.get("subresource", ""),
                            agent,
                            datetime.fromisoformat(event["requestReceivedTimestamp"]),
                        )
                    )
        return writes

    def operator_watches_since(self, offset: int, namespace: str) -> dict[str, list[str]]:
        """Resource → the request URIs of the watches the operator opened in `namespace`
        (recorded when the stream starts)."""
        watches: dict[str, list[str]] = {}
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                event = json.loads(line)
                ref = event.get("objectRef", {})
                if (
                    event.get("stage") == "ResponseStarted"
                    and event.get("verb") == "watch"
                    and ref.get("namespace") == namespace
                    and event.get("userAgent", "").startswith(OPERATOR_AGENTS)
                ):
                    watches.setdefault(ref.get("resource", ""), []).append(event["requestURI"])
        return watches
