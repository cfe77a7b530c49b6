"""spec.server: what the serving pods run besides the model — image, workers, resources, env and
scheduling."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from modeldeploy_serving.contract import ENV_MODEL, ENV_VERSION
from pydantic import ConfigDict, Field, field_validator, model_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import (
    MAX_ENV,
    MAX_NODE_SELECTOR,
    MAX_RESOURCE_NAMES,
    MAX_TOLERATIONS,
)
from modeldeploy_operator.api.patterns import (
    DATA_KEY_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENV_NAME_PATTERN,
)
from modeldeploy_operator.api.rules import Rule, cel_list, cel_rules, cel_string
from modeldeploy_operator.api.units import Quantity, parse_quantity

# Environment variables the operator sets on every serving pod (CONVENTIONS: the server labels its
# metrics from them); a user may not override them through spec.server.env.
RESERVED_ENV: Final = (ENV_MODEL, ENV_VERSION)


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


# Resource names a container may request besides extended ones (DOMAIN/NAME, e.g. nvidia.com/gpu).
RESOURCE_NAMES: Final = ("cpu", "memory", "ephemeral-storage")
HUGEPAGES_PREFIX: Final = "hugepages-"


def _resource_names_rule(path: str) -> Rule:
    return Rule(
        f"self.all(k, k in {cel_list(RESOURCE_NAMES)}"
        f" || k.startsWith({cel_string(HUGEPAGES_PREFIX)}) || k.contains('/'))",
        f"{path} keys must be {', '.join(RESOURCE_NAMES)}, {HUGEPAGES_PREFIX}<size> or an extended "
        "resource such as nvidia.com/gpu",
    )


REQUESTS_WITHIN_LIMITS_RULE: Final = Rule(
    "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits)"
    " || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
    "spec.server.resources.requests must not exceed spec.server.resources.limits",
    field_path=".requests",
)


def _resource_map(path: str) -> Any:
    return Field(
        default=None,
        description=f"{path.rsplit('.', 1)[-1].capitalize()} per resource name "
        "(cpu, memory, ...), as Kubernetes quantities.",
        max_length=MAX_RESOURCE_NAMES,
        json_schema_extra=cel_rules(_resource_names_rule(path)),
    )


def _check_resource_names(resources: dict[str, int | str] | None, path: str) -> None:
    if resources is not None:
        _resource_names_rule(path).require(
            all(
                k in RESOURCE_NAMES or k.startswith(HUGEPAGES_PREFIX) or "/" in k for k in resources
            )
        )


class ResourceRequirements(SpecModel):
    """Compute resources of the serving container. A resource named here, as a request or a
    limit, takes none of the operator's defaults; resources not named here keep them."""

    model_config = ConfigDict(json_schema_extra=cel_rules(REQUESTS_WITHIN_LIMITS_RULE))

    requests: dict[str, Quantity] | None = _resource_map("spec.server.resources.requests")
    limits: dict[str, Quantity] | None = _resource_map("spec.server.resources.limits")

    @model_validator(mode="after")
    def _rules(self) -> ResourceRequirements:
        _check_resource_names(self.requests, "spec.server.resources.requests")
        _check_resource_names(self.limits, "spec.server.resources.limits")
        if self.requests is not None and self.limits is not None:
            REQUESTS_WITHIN_LIMITS_RULE.require(
                all(
                    parse_quantity(amount) <= parse_quantity(self.limits[name])
                    for name, amount in self.requests.items()
                    if name in self.limits
                )
            )
        return self


class SecretKeySelector(SpecModel):
    """A key of a Secret in the ModelDeployment's namespace."""

    name: str = Field(
        description="Name of the Secret.", pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )
    key: str = Field(
        description="Key within the Secret.",
        pattern=DATA_KEY_PATTERN,
        max_length=253,
    )
    optional: bool | None = Field(
        default=None,
        description="Start the pod without the variable when the Secret or key is missing "
        "(default: the pod waits for it).",
    )


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeySelector = Field(
        description="Take the value from a Secret key (credentials for s3://, gs:// or an MLflow "
        "registry)."
    )


ENV_VALUE_RULE: Final = Rule(
    "has(self.value) != has(self.valueFrom)",
    "spec.server.env entries need exactly one of value or valueFrom",
)


class EnvVar(SpecModel):
    """An environment variable for the model server and its fetcher."""

    model_config = ConfigDict(json_schema_extra=cel_rules(ENV_VALUE_RULE))

    name: str = Field(
        description="Variable name.", pattern=ENV_NAME_PATTERN, min_length=1, max_length=128
    )
    value: str | None = Field(default=None, description="Literal value.", max_length=32768)
    value_from: EnvVarSource | None = Field(
        default=None, description="Take the value from a Secret instead of a literal."
    )

    @model_validator(mode="after")
    def _rules(self) -> EnvVar:
        ENV_VALUE_RULE.require((self.value is None) != (self.value_from is None))
        return self


RESERVED_ENV_RULE: Final = Rule(
    f"self.all(e, !(e.name in {cel_list(RESERVED_ENV)}))",
    "spec.server.env must not set " + " or ".join(RESERVED_ENV) + " (the operator sets them)",
)


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


TOLERATION_EXISTS_RULE: Final = Rule(
    f"!has(self.operator) || self.operator != {cel_string(TolerationOperator.EXISTS)}"
    " || !has(self.value) || self.value == ''",
    f"spec.server.tolerations: operator {TolerationOperator.EXISTS} takes no value",
)


class Toleration(SpecModel):
    """A taint the serving pods tolerate (Kubernetes' core/v1 Toleration)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(TOLERATION_EXISTS_RULE))

    key: str | None = Field(
        default=None, description="Taint key; empty with Exists: every taint.", max_length=317
    )
    operator: TolerationOperator | None = Field(
        default=None, description="Exists or Equal (Kubernetes' default: Equal)."
    )
    value: str | None = Field(default=None, description="Taint value (Equal).", max_length=63)
    effect: TaintEffect | None = Field(default=None, description="Taint effect; empty: all.")
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated before eviction."
    )

    @model_validator(mode="after")
    def _rules(self) -> Toleration:
        TOLERATION_EXISTS_RULE.require(
            self.operator is not TolerationOperator.EXISTS or not self.value
        )
        return self


class ServerSpec(SpecModel):
    """Knobs for the serving pods; everything absent comes from the operator's configuration."""

    image: str | None = Field(
        default=None,
        description="Model server image (runs `modeldeploy serve` and `modeldeploy fetch`); "
        "default from the operator's configuration.",
        pattern=r"^\S+$",
        max_length=512,
    )
    image_pull_policy: PullPolicy | None = Field(
        default=None, description="Image pull policy; Kubernetes' default when absent."
    )
    workers: int | None = Field(
        default=None,
        description="Server worker processes per pod (`modeldeploy serve --workers`).",
        ge=1,
        le=64,
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Compute resources of the serving container."
    )
    # Absent, not empty, by default: an empty value would change every serving template's
    # fingerprint and roll every existing ModelDeployment.
    node_selector: dict[str, str] | None = Field(
        default=None,
        description="Node labels the serving pods require (the pod's nodeSelector).",
        max_length=MAX_NODE_SELECTOR,
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        description="Taints the serving pods tolerate (the pod's tolerations).",
        max_length=MAX_TOLERATIONS,
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Extra environment variables for the server and the artifact fetcher.",
        max_length=MAX_ENV,
        json_schema_extra={
            **cel_rules(RESERVED_ENV_RULE),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )

    @field_validator("env")
    @classmethod
    def _env(cls, env: list[EnvVar]) -> list[EnvVar]:
        RESERVED_ENV_RULE.require(all(e.name not in RESERVED_ENV for e in env))
        names = [e.name for e in env]
        if len(set(names)) != len(names):
            raise ValueError("spec.server.env names must be unique")
        return env
