"""What one live version should look like: the reconciler's decision, the builders' input."""

from __future__ import annotations

from dataclasses import dataclass

from modeldeploy_operator.api import ServingTemplate
from modeldeploy_operator.naming import Track


@dataclass(frozen=True)
class TrackPlan:
    """One live version: its track, what its pods run, its size and its share of traffic.

    `replicas` None means an autoscaler owns the size: the Deployment then carries no
    `spec.replicas` (server-side apply would otherwise reset what the HPA chose) and the
    builders emit an HPA. `initial_replicas` is the size an autoscaled Deployment is created
    with (its autoscaler's minimum), set only while it does not exist yet. `weight` is the
    percent of traffic the version should receive.
    """

    track: Track
    serving: ServingTemplate
    replicas: int | None
    weight: int
    initial_replicas: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"weight must be within 0..100, not {self.weight}")
        if self.replicas is not None and self.replicas < 0:
            raise ValueError(f"replicas must not be negative, not {self.replicas}")
        if self.initial_replicas is not None and self.replicas is not None:
            raise ValueError("initial_replicas is only for a size an autoscaler owns")

    @property
    def version(self) -> str:
        return self.serving.model.version
