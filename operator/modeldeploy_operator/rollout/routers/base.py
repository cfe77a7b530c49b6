"""The one interface every traffic router implements, and the split they all express.

A router answers three questions, purely (no I/O): which versions the model Service `<md>`
selects for a split (`selected_versions`), which objects of its own decide where the model's
traffic goes (`route_objects`, applied with the other children and owned by the
ModelDeployment), and how many pods the canary needs at a weight (`canary_replicas`). The model
Service itself is built once, by the builders, from `selected_versions`. Adding a router is one
new module and one line in `factory`; the state machine never changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from modeldeploy_operator import api
from modeldeploy_operator.api import ModelDeployment

Manifest = dict[str, Any]


@dataclass(frozen=True)
class TrafficSplit:
    """Where a pass wants the model's requests: `canary_weight` percent to the canary (0 while it
    warms up, 100 at promotion until the old stable is gone), and `mirror_percent` of requests
    also copied to the canary while it has less than all traffic."""

    stable_version: str
    canary_version: str | None = None
    canary_weight: int = 0
    mirror_percent: int = 0

    def __post_init__(self) -> None:
        # Raise ValueError for a split no router can express (a bug in the caller).
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary weight must be within 0..100, not {self.canary_weight}")
        if not 0 <= self.mirror_percent <= 100:
            raise ValueError(f"mirror percent must be within 0..100, not {self.mirror_percent}")
        if self.canary_version is None and self.canary_weight != 0:
            raise ValueError(f"canary weight {self.canary_weight} without a canary version")
        if self.canary_version == self.stable_version:
            raise ValueError(f"version {self.stable_version} cannot be both stable and canary")


def check_replicas(stable_replicas: int, weight: int) -> None:
    if stable_replicas < 0:
        raise ValueError(f"stable replicas must not be negative, not {stable_replicas}")
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, not {weight}")


class TrafficRouter(ABC):
    """How traffic is split between the stable and the canary version."""

    name: ClassVar[api.TrafficRouter]

    @abstractmethod
    def selected_versions(self, split: TrafficSplit) -> list[str]:
        """The versions whose pods the model Service `<md>` selects."""

    @abstractmethod
    def canary_replicas(self, stable_replicas: int, weight: int) -> int:
        """Pods the canary needs at `weight` percent, given the stable version's pod count.

        Always at least 1: a canary must become ready before it gets traffic, and receives
        mirrored requests at weight 0. At 100 the canary is sized like the stable version.
        """

    @abstractmethod
    def route_objects(self, md: ModelDeployment, split: TrafficSplit) -> list[Manifest]:
        """The router's own objects for this split (none for a router that needs none)."""
