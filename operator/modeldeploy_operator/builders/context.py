"""Operator settings the builders need, as one explicit, immutable object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from modeldeploy_serving.contract import MODEL_MOUNT_PATH, PVC_MOUNT_ROOT, SERVER_PORT

# The non-root user the serving image runs as (distroless "nonroot"), and its group.
NONROOT_UID: Final = 65532


def _default_requests() -> Mapping[str, str]:
    return {"cpu": "100m", "memory": "256Mi"}


def _default_limits() -> Mapping[str, str]:
    # No CPU limit by default: CPU throttling inflates tail latency; memory is capped so a
    # leaking model is restarted instead of starving its node.
    return {"memory": "1Gi"}


@dataclass(frozen=True)
class BuildContext:
    """What the builders take from the operator's configuration rather than from the spec."""

    server_image: str
    default_requests: Mapping[str, str] = field(default_factory=_default_requests)
    default_limits: Mapping[str, str] = field(default_factory=_default_limits)
    # Where `modeldeploy fetch` writes the artifact (an emptyDir) and the server reads it.
    model_mount_path: str = MODEL_MOUNT_PATH
    # pvc://CLAIM/PATH mounts CLAIM read-only at <root>/CLAIM; the server reads its PATH there.
    pvc_mount_root: str = PVC_MOUNT_ROOT
    port: int = SERVER_PORT
    # A terminating pod keeps serving this long (preStop) while endpoints, kube-proxy and
    # gateways stop sending it requests, then drains in-flight requests for at most
    # drain_seconds (the server's --graceful-timeout) before the kubelet's grace period ends.
    pre_stop_seconds: int = 10
    drain_seconds: int = 20
    revision_history_limit: int = 3
    # Slow model loads (large artifacts, cold caches) get this long before liveness applies.
    startup_timeout_seconds: int = 600

    @property
    def termination_grace_period_seconds(self) -> int:
        """Longer than the preStop pause and the drain together, so neither is cut short."""
        return self.pre_stop_seconds + self.drain_seconds + 5
