"""Where a test's pods run on the local cluster (cluster/up.sh): on kwok's fake nodes, which run
no container (pods become Running and Ready from kwok's stages, whatever their image), or on the
real node, where they run for real. The fake nodes carry a NoSchedule taint, so a pod lands there
only when it says so: these are the words (the taint itself is set in cluster/up.sh)."""

from __future__ import annotations

from typing import Any, Final

FAKE_NODE_SELECTOR: Final = {"type": "kwok"}
FAKE_NODE_TOLERATIONS: Final = [
    {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
]
REAL_NODE_SELECTOR: Final = {"type": "real"}


def on_fake_nodes(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """A pod spec (or a ModelDeployment's spec.server) scheduled onto the fake nodes."""
    return {
        **pod_spec,
        "nodeSelector": {**pod_spec.get("nodeSelector", {}), **FAKE_NODE_SELECTOR},
        "tolerations": [*pod_spec.get("tolerations", []), *FAKE_NODE_TOLERATIONS],
    }
