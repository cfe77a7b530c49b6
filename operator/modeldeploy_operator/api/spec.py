"""The whole spec: its sections, the rule across them, and the serving template (what a version's
pods run), which status keeps for the stable and canary versions."""

from __future__ import annotations

import hashlib
import json
from typing import Final

from pydantic import ConfigDict, Field, model_validator

from modeldeploy_operator.api.autoscaling import AutoscalingSpec
from modeldeploy_operator.api.base import SpecModel, wire_default
from modeldeploy_operator.api.limits import MAX_REPLICAS
from modeldeploy_operator.api.model import ModelSpec, PinnedModel
from modeldeploy_operator.api.monitoring import MonitoringSpec
from modeldeploy_operator.api.rollout import RolloutSpec
from modeldeploy_operator.api.rules import Rule, cel_rules
from modeldeploy_operator.api.server import ServerSpec
from modeldeploy_operator.api.traffic import TrafficSpec


class ServingTemplate(SpecModel):
    """What a serving pod runs: the model and the server knobs. `status.stableServing` keeps the
    one the stable version runs, so a restarted operator or a rollout never loses it."""

    model: PinnedModel = Field(description="The model version and its artifact.")
    server: ServerSpec = Field(
        default_factory=lambda: ServerSpec(), description="Knobs for the serving pods."
    )

    def fingerprint(self) -> str:
        """A short stable hash: equal templates → equal pods; any change → a new value."""
        canonical = json.dumps(
            self.model_dump(mode="json", by_alias=True, exclude_none=True),
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


REPLICAS_WITHIN_AUTOSCALING_RULE: Final = Rule(
    "!has(self.autoscaling) || self.replicas <= self.autoscaling.maxReplicas",
    "spec.replicas must be <= spec.autoscaling.maxReplicas (while autoscaling is set the "
    "autoscaler owns the replica count)",
    field_path=".replicas",
)


class ModelDeploymentSpec(SpecModel):
    """The desired state: which model version serves, how many pods, how it rolls out."""

    model_config = ConfigDict(json_schema_extra=cel_rules(REPLICAS_WITHIN_AUTOSCALING_RULE))

    model: ModelSpec = Field(
        description="The model to serve: a version and its artifact, or a registry to follow."
    )
    replicas: int = Field(
        default=1,
        description="Pods of the stable version when autoscaling is absent (kubectl scale md).",
        ge=0,
        le=MAX_REPLICAS,
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="Autoscale each version with a HorizontalPodAutoscaler. While set, the "
        "autoscaler owns the replica count and spec.replicas is not used; during a rollout the "
        "canary's bounds are scaled by its traffic weight.",
    )
    server: ServerSpec = Field(
        default_factory=lambda: ServerSpec(), description="Knobs for the serving pods."
    )
    rollout: RolloutSpec = Field(
        default_factory=lambda: RolloutSpec(),
        description="How a new version replaces the stable one.",
        json_schema_extra={"default": wire_default(RolloutSpec)},
    )
    traffic: TrafficSpec = Field(
        default_factory=lambda: TrafficSpec(),
        description="How traffic is split between versions.",
        json_schema_extra={"default": wire_default(TrafficSpec)},
    )
    monitoring: MonitoringSpec = Field(
        default_factory=lambda: MonitoringSpec(),
        description="ServiceMonitor and alert rules.",
        json_schema_extra={"default": wire_default(MonitoringSpec)},
    )

    @model_validator(mode="after")
    def _rules(self) -> ModelDeploymentSpec:
        REPLICAS_WITHIN_AUTOSCALING_RULE.require(
            self.autoscaling is None or self.replicas <= self.autoscaling.max_replicas
        )
        return self

    def serving(self) -> ServingTemplate:
        """The template the spec asks every pod of the desired version to run. A spec that
        follows a source has no template of its own until the registry's answer is pinned into
        it (`modeldeploy_operator.registry.pin`)."""
        model = self.model.pinned()
        if model is None:
            raise ValueError("spec.model follows a source: pin the resolved version first")
        return ServingTemplate(model=model, server=self.server)
