"""Metadata every child shares: name, namespace, labels and the controlling owner reference."""

from __future__ import annotations

from typing import Any

from modeldeploy_operator import api
from modeldeploy_operator.api import ModelDeployment


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    """Makes the ModelDeployment the controller of a child: deleting it deletes the child, and
    foreground deletion waits for the child."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": md.metadata.name,
        "uid": md.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(md: ModelDeployment, name: str, labels: dict[str, str]) -> dict[str, Any]:
    if not md.metadata.uid:
        # Without a uid the owner reference is invalid and the child would never be collected.
        raise ValueError(f"ModelDeployment {md.metadata.name} has no uid (not read from the API?)")
    return {
        "name": name,
        "namespace": md.metadata.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(md)],
    }
