"""spec.traffic: how requests are split between the stable and canary versions (a weighted
Gateway API HTTPRoute, or replica ratios behind the model Service)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, model_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import MAX_HOSTNAMES
from modeldeploy_operator.api.patterns import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    HOSTNAME_PATTERN,
)
from modeldeploy_operator.api.rules import Rule, cel_rules, cel_string


class TrafficRouter(StrEnum):
    AUTO = "Auto"
    GATEWAY_API = "GatewayAPI"
    REPLICA_RATIO = "ReplicaRatio"


class GatewayRef(SpecModel):
    """The Gateway the HTTPRoute attaches to."""

    name: str = Field(
        description="Name of the Gateway.", pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )
    namespace: str | None = Field(
        default=None,
        description="Namespace of the Gateway; default: the ModelDeployment's namespace.",
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
    )
    section_name: str | None = Field(
        default=None,
        description="Listener of the Gateway to attach to; default: every listener that allows it.",
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
    )


GATEWAY_REF_REQUIRED_RULE: Final = Rule(
    f"self.router != {cel_string(TrafficRouter.GATEWAY_API)} || has(self.gatewayRef)",
    f"spec.traffic.gatewayRef is required when spec.traffic.router is {TrafficRouter.GATEWAY_API}",
    field_path=".gatewayRef",
)
GATEWAY_REF_UNUSED_RULE: Final = Rule(
    f"self.router != {cel_string(TrafficRouter.REPLICA_RATIO)} || !has(self.gatewayRef)",
    f"spec.traffic.gatewayRef is not used by router {TrafficRouter.REPLICA_RATIO}: remove it or "
    f"use {TrafficRouter.GATEWAY_API}",
    field_path=".gatewayRef",
)
MIRROR_NEEDS_GATEWAY_RULE: Final = Rule(
    "self.mirrorPercent == 0 || has(self.gatewayRef)",
    "spec.traffic.mirrorPercent > 0 needs the Gateway API router: set spec.traffic.gatewayRef "
    "with router GatewayAPI or Auto",
    field_path=".mirrorPercent",
)
HOSTNAMES_NEED_GATEWAY_RULE: Final = Rule(
    "size(self.hostnames) == 0 || has(self.gatewayRef)",
    "spec.traffic.hostnames need the Gateway API router: set spec.traffic.gatewayRef "
    "with router GatewayAPI or Auto",
    field_path=".hostnames",
)


class TrafficSpec(SpecModel):
    """How traffic is split between the stable and canary versions."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            GATEWAY_REF_REQUIRED_RULE,
            GATEWAY_REF_UNUSED_RULE,
            MIRROR_NEEDS_GATEWAY_RULE,
            HOSTNAMES_NEED_GATEWAY_RULE,
        )
    )

    router: TrafficRouter = Field(
        default=TrafficRouter.AUTO,
        description="GatewayAPI: a weighted HTTPRoute; ReplicaRatio: the model Service selects "
        "both versions and replica counts approximate the weight; Auto: GatewayAPI when the "
        "HTTPRoute CRD exists and gatewayRef is set, else ReplicaRatio.",
    )
    gateway_ref: GatewayRef | None = Field(
        default=None, description="The Gateway to attach the HTTPRoute to (needed by GatewayAPI)."
    )
    hostnames: list[Annotated[str, Field(pattern=HOSTNAME_PATTERN, max_length=253)]] = Field(
        default_factory=list,
        description="Hostnames the HTTPRoute matches (Gateway API only); empty → the Gateway's.",
        max_length=MAX_HOSTNAMES,
        json_schema_extra={"default": [], "x-kubernetes-list-type": "set"},
    )
    mirror_percent: int = Field(
        default=0,
        description="Percent of requests also sent to the canary as shadow traffic, responses "
        "ignored (Gateway API RequestMirror).",
        ge=0,
        le=100,
    )

    @model_validator(mode="after")
    def _rules(self) -> TrafficSpec:
        if len(set(self.hostnames)) != len(self.hostnames):
            raise ValueError("spec.traffic.hostnames must be unique")
        has_ref = self.gateway_ref is not None
        GATEWAY_REF_REQUIRED_RULE.require(self.router != TrafficRouter.GATEWAY_API or has_ref)
        GATEWAY_REF_UNUSED_RULE.require(self.router != TrafficRouter.REPLICA_RATIO or not has_ref)
        MIRROR_NEEDS_GATEWAY_RULE.require(self.mirror_percent == 0 or has_ref)
        HOSTNAMES_NEED_GATEWAY_RULE.require(not self.hostnames or has_ref)
        return self
