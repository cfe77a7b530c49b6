"""The one interface every traffic router implements, and the checks they all share.

A router answers three questions for the state machine, purely (no I/O): which objects decide
where the model's traffic goes (`desired_objects`, applied with the other children and owned by
the ModelDeployment), which versions the model Service `<md>` selects (`selected_versions`), and
how many pods the canary needs at a weight (`canary_replicas`). Adding a router is one new module
and one line in `factory`; the state machine never changes.

Every router returns the model Service among its objects, built by the same builder
`desired_children` uses: pass `traffic_versions=router.selected_versions(...)` to
`desired_children` and the two are identical; `with_traffic_objects` lays a router's objects over
the children either way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

from modeldeploy_operator import api
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders.service import build_model_service

Manifest = dict[str, Any]


def check_split(
    stable_version: str, canary_version: str | None, canary_weight: int, mirror_percent: int
) -> None:
    """Raise ValueError for a split no router can express (a bug in the caller)."""
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary weight must be within 0..100, not {canary_weight}")
    if not 0 <= mirror_percent <= 100:
        raise ValueError(f"mirror percent must be within 0..100, not {mirror_percent}")
    if canary_version is None and canary_weight != 0:
        raise ValueError(f"canary weight {canary_weight} without a canary version")
    if canary_version is not None and canary_version == stable_version:
        raise ValueError(f"version {stable_version} cannot be both stable and canary")


def check_replicas(stable_replicas: int, weight: int) -> None:
    if stable_replicas < 0:
        raise ValueError(f"stable replicas must not be negative, not {stable_replicas}")
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, not {weight}")


class TrafficRouter(ABC):
    """How traffic is split between the stable and the canary version."""

    name: ClassVar[api.TrafficRouter]

    def desired_objects(
        self,
        md: ModelDeployment,
        stable_version: str,
        canary_version: str | None,
        canary_weight: int,
        mirror_percent: int = 0,
    ) -> list[Manifest]:
        """The traffic objects for this split: the model Service, plus the router's own.

        `canary_weight` is the percent of requests the canary should serve (0 while it warms
        up, 100 at promotion until the old stable is gone); `mirror_percent` the percent of
        requests also copied to the canary while it has less than all traffic.
        """
        check_split(stable_version, canary_version, canary_weight, mirror_percent)
        service = build_model_service(
            md, self.selected_versions(stable_version, canary_version, canary_weight)
        )
        return [
            service,
            *self._route_objects(md, stable_version, canary_version, canary_weight, mirror_percent),
        ]

    @abstractmethod
    def selected_versions(
        self, stable_version: str, canary_version: str | None, canary_weight: int
    ) -> list[str]:
        """The versions whose pods the model Service `<md>` selects."""

    @abstractmethod
    def canary_replicas(self, stable_replicas: int, weight: int) -> int:
        """Pods the canary needs at `weight` percent, given the stable version's pod count.

        Always at least 1: a canary must become ready before it gets traffic, and receives
        mirrored requests at weight 0. At 100 the canary is sized like the stable version.
        """

    @abstractmethod
    def _route_objects(
        self,
        md: ModelDeployment,
        stable_version: str,
        canary_version: str | None,
        canary_weight: int,
        mirror_percent: int,
    ) -> list[Manifest]:
        """Objects besides the model Service (already-checked arguments)."""


def object_key(manifest: Manifest) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def with_traffic_objects(
    children: Iterable[Manifest], traffic_objects: Iterable[Manifest]
) -> list[Manifest]:
    """`children` with any object of the same kind and name replaced by the router's, and the
    router's other objects appended (each object appears once)."""
    traffic = list(traffic_objects)
    replaced = {object_key(m) for m in traffic}
    return [m for m in children if object_key(m) not in replaced] + traffic
