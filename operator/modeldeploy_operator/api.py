"""The ModelDeployment API (`modeldeploy.dev/v1alpha1`): the single source of truth.

Owns every field of spec and status: names, descriptions (what `kubectl explain` prints),
defaults, enums, bounds and patterns, and every cross-field rule. A cross-field rule is written
once as a `Rule`: its CEL expression goes into the CRD (`crdgen`), so the apiserver rejects a bad
manifest with the rule's message, and its Python twin runs in a pydantic validator with the same
message, so the operator, the tests and the kubectl plugin agree with the apiserver.

Spec models forbid unknown fields and are frozen (the reconciler must never mutate what the user
declared); status models ignore unknown fields so an older operator can read a newer status.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Final

from modeldeploy_serving.contract import ENV_MODEL, ENV_VERSION
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP: Final = "modeldeploy.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("md", "mdep")
CATEGORIES: Final = ("modeldeploy",)

# Environment variables the operator sets on every serving pod (CONVENTIONS: the server labels its
# metrics from them); a user may not override them through spec.server.env.
RESERVED_ENV: Final = (ENV_MODEL, ENV_VERSION)

# Limits that keep the CEL rules inside the apiserver's cost budget: CEL cost is estimated from
# the largest possible list/string, so every list or string a rule walks has a bound here.
MAX_VERSION_LENGTH: Final = 63  # a Kubernetes label value (the version is one)
MAX_URI_LENGTH: Final = 2048
MAX_STEPS: Final = 20
MAX_ENV: Final = 64
MAX_HOSTNAMES: Final = 16
MAX_RESOURCE_NAMES: Final = 16
MAX_REPLICAS: Final = 1000


# ---------------------------------------------------------------------------------------------
# Rules: one CEL expression and one message, checked by the apiserver and by pydantic alike.


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: CEL for the apiserver, a message both sides report verbatim.

    `field_path` (relative to the object the rule sits on) makes the apiserver report the error
    on that field, e.g. `spec.autoscaling.minReplicas: Invalid value: ...: <message>`.
    """

    cel: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        validation = {"rule": self.cel, "message": self.message}
        if self.field_path is not None:
            validation["fieldPath"] = self.field_path
        return validation

    def require(self, holds: bool) -> None:
        """Raise the rule's message when the Python twin of the CEL expression does not hold."""
        if not holds:
            raise ValueError(self.message)


def cel_rules(*rules: Rule) -> dict[str, Any]:
    """`json_schema_extra` carrying rules into the generated schema."""
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}


# ---------------------------------------------------------------------------------------------
# Scalar types with their patterns.

# A label value (the version is the `modeldeploy.dev/version` label on every pod).
VERSION_PATTERN: Final = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
SHA256_PATTERN: Final = r"^[a-f0-9]{64}$"
# Go-style durations as CEL's duration() and the operator read them: 30s, 5m, 1h30m, 500ms.
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
# Prometheus durations (alert rules' `for`), the pattern the Prometheus Operator's CRDs use.
PROMETHEUS_DURATION_PATTERN: Final = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
# Kubernetes resource.Quantity, exactly as the apiserver's own schemas spell it.
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Gateway API Hostname: an RFC 1123 name, optionally with one leading wildcard label.
HOSTNAME_PATTERN: Final = (
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
ENV_NAME_PATTERN: Final = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
HTTP_URL_PATTERN: Final = r"^https?://[^\s/]+(/\S*)?$"
# The model's Service is named after the ModelDeployment, and Service names are DNS-1035 labels.
NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration ("90s", "1h30m", "250ms"), as CEL's duration() reads it."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(
        float(amount) * _DURATION_UNIT_SECONDS[unit]
        for amount, unit in _DURATION_PART.findall(text)
    )


_QUANTITY_SUFFIX: Final = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip
_QUANTITY_SPLIT = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9.]+|[A-Za-z]*)$")


def parse_quantity(value: int | str) -> Decimal:
    """The numeric value of a Kubernetes quantity ("100m" → 0.1, "1Gi" → 1073741824)."""
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY_SPLIT.match(value)
    if not re.fullmatch(QUANTITY_PATTERN, value) or match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity like 100m, 1.5 or 256Mi")
    number, suffix = match.groups()
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _QUANTITY_SUFFIX[suffix]
    except (InvalidOperation, KeyError) as err:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from err


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("a quantity is at most 64 characters")
    parse_quantity(value)
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": 64,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


def _duration_rule(path: str, minimum: str = "1s") -> Rule:
    """Durations are bounded to minimum..24h; CEL's duration() both parses and compares them."""
    # The pattern guard keeps a malformed value to the schema's own error, without a second
    # "type conversion error" from duration().
    return Rule(
        "!self.matches('" + DURATION_PATTERN.replace("\\", "\\\\") + "')"
        f" || (duration(self) >= duration('{minimum}') && duration(self) <= duration('24h'))",
        f"{path} must be between {minimum} and 24h",
    )


def _duration_field(
    default: str | None, *, description: str, path: str, minimum: str = "1s"
) -> Any:
    return Field(
        default=default,
        description=description,
        pattern=DURATION_PATTERN,
        max_length=32,
        json_schema_extra=cel_rules(_duration_rule(path, minimum)),
    )


def _check_duration_range(value: str | None, path: str, minimum: str = "1s") -> None:
    if value is not None:
        seconds = parse_duration(value)
        _duration_rule(path, minimum).require(parse_duration(minimum) <= seconds <= 86400.0)


# ---------------------------------------------------------------------------------------------
# Enums.


class ModelFormat(StrEnum):
    """Serialisation formats the model server loads."""

    SKLEARN = "sklearn"


class RolloutStrategy(StrEnum):
    CANARY = "Canary"
    IMMEDIATE = "Immediate"


class NoDataPolicy(StrEnum):
    FAIL = "Fail"
    PASS = "Pass"
    HOLD = "Hold"


class ClientErrorPolicy(StrEnum):
    """Whether the success rate counts the canary's 4xx answers as failures."""

    COUNT = "Count"
    IGNORE = "Ignore"


class TrafficRouter(StrEnum):
    AUTO = "Auto"
    GATEWAY_API = "GatewayAPI"
    REPLICA_RATIO = "ReplicaRatio"


class MonitoringMode(StrEnum):
    AUTO = "Auto"
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class PauseReason(StrEnum):
    """Who holds a canary at its step; also the Progressing condition's reason meanwhile."""

    SPEC = "Paused"  # spec.rollout.paused: the declarative pause, lifted in the manifest
    REQUEST = "PausedByRequest"  # `kubectl modeldeploy pause`, lifted by `resume`


# ---------------------------------------------------------------------------------------------
# Spec.


def wire_default(model: type[BaseModel]) -> dict[str, Any]:
    """A spec model's defaults as the apiserver should fill them in for an absent object.

    The CRD carries the whole defaulted object, not `{}`: the apiserver checks a default against
    the CEL rules as written, without applying the nested defaults first.
    """
    return model().model_dump(mode="json", by_alias=True, exclude_none=True)


class SpecModel(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


STORAGE_SCHEMES: Final = ("file://", "pvc://", "http://", "https://", "s3://", "gs://", "models:/")

URI_SCHEME_RULE = Rule(
    " || ".join(f"self.startsWith('{scheme}')" for scheme in STORAGE_SCHEMES),
    "spec.model.storageUri must start with one of " + ", ".join(STORAGE_SCHEMES),
)
URI_WHITESPACE_RULE = Rule(
    "!self.matches('\\\\s')", "spec.model.storageUri must not contain whitespace"
)
URI_FILE_RULE = Rule(
    "!self.startsWith('file://') || self.matches('^file:///[^/].*$')",
    "spec.model.storageUri file:// URIs need an absolute path: file:///PATH",
)
URI_PVC_RULE = Rule(
    "!self.startsWith('pvc://') || self.matches('^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^/].*$')",
    "spec.model.storageUri pvc:// URIs need a claim and a path: pvc://CLAIM/PATH",
)
URI_BUCKET_RULE = Rule(
    "!(self.startsWith('s3://') || self.startsWith('gs://'))"
    " || self.matches('^(s3|gs)://[a-z0-9][-a-z0-9._]*/[^/].*$')",
    "spec.model.storageUri s3:// and gs:// URIs need a bucket and a key: s3://BUCKET/KEY",
)
URI_HTTP_RULE = Rule(
    "!(self.startsWith('http://') || self.startsWith('https://'))"
    " || self.matches('^https?://[^/]+/.+$')",
    "spec.model.storageUri http(s):// URIs need a host and a path: https://HOST/PATH",
)
URI_REGISTRY_RULE = Rule(
    "!self.startsWith('models:/') || self.matches('^models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_-]+)$')",
    "spec.model.storageUri models:/ URIs name a registered model and a version or alias: "
    "models:/NAME/VERSION or models:/NAME@ALIAS",
)
STORAGE_URI_RULES: Final = (
    URI_SCHEME_RULE,
    URI_WHITESPACE_RULE,
    URI_FILE_RULE,
    URI_PVC_RULE,
    URI_BUCKET_RULE,
    URI_HTTP_RULE,
    URI_REGISTRY_RULE,
)


def _cel_matches(pattern: str, text: str) -> bool:
    """CEL's `matches` is an unanchored RE2 search; the patterns above anchor themselves."""
    return re.search(pattern, text) is not None


class ModelSpec(SpecModel):
    """The registered model version to serve and where its artifact lives."""

    format: ModelFormat = Field(
        description="Serialisation format of the artifact; the server picks its loader from it "
        "(sklearn: a joblib or pickle file holding a fitted estimator)."
    )
    version: str = Field(
        description="The registered version that should serve all traffic. Changing it starts a "
        "rollout from the current stable version; setting it back aborts the rollout. Must be a "
        "valid label value (letters, digits, '.', '_', '-'; at most 63 characters).",
        pattern=VERSION_PATTERN,
        min_length=1,
        max_length=MAX_VERSION_LENGTH,
    )
    storage_uri: str = Field(
        description="Where the artifact lives: file:///PATH, pvc://CLAIM/PATH (mounted read-only, "
        "nothing copied), http(s)://HOST/PATH, s3://BUCKET/KEY, gs://BUCKET/KEY, or an MLflow "
        "registry reference models:/NAME/VERSION or models:/NAME@ALIAS.",
        min_length=1,
        max_length=MAX_URI_LENGTH,
        json_schema_extra=cel_rules(*STORAGE_URI_RULES),
    )
    sha256: str | None = Field(
        default=None,
        description="Expected SHA-256 of the artifact (64 lowercase hex digits); the fetcher and "
        "the server refuse an artifact that does not match.",
        pattern=SHA256_PATTERN,
    )

    @field_validator("storage_uri")
    @classmethod
    def _storage_uri(cls, uri: str) -> str:
        URI_SCHEME_RULE.require(uri.startswith(STORAGE_SCHEMES))
        URI_WHITESPACE_RULE.require(not _cel_matches(r"\s", uri))
        URI_FILE_RULE.require(
            not uri.startswith("file://") or _cel_matches(r"^file:///[^/].*$", uri)
        )
        URI_PVC_RULE.require(
            not uri.startswith("pvc://")
            or _cel_matches(r"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^/].*$", uri)
        )
        URI_BUCKET_RULE.require(
            not uri.startswith(("s3://", "gs://"))
            or _cel_matches(r"^(s3|gs)://[a-z0-9][-a-z0-9._]*/[^/].*$", uri)
        )
        URI_HTTP_RULE.require(
            not uri.startswith(("http://", "https://")) or _cel_matches(r"^https?://[^/]+/.+$", uri)
        )
        URI_REGISTRY_RULE.require(
            not uri.startswith("models:/")
            or _cel_matches(r"^models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_-]+)$", uri)
        )
        return uri


AUTOSCALING_BOUNDS_RULE = Rule(
    "self.minReplicas <= self.maxReplicas",
    "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
    field_path=".minReplicas",
)
AUTOSCALING_TARGET_RULE = Rule(
    "has(self.targetCPUUtilizationPercentage) || has(self.targetMemoryUtilizationPercentage)"
    " || has(self.targetRequestsPerSecond)",
    "spec.autoscaling needs at least one target: targetCPUUtilizationPercentage, "
    "targetMemoryUtilizationPercentage or targetRequestsPerSecond",
)
SCALE_TO_ZERO_RULE = Rule(
    "self.minReplicas > 0 || has(self.targetRequestsPerSecond)",
    "spec.autoscaling.minReplicas 0 (scale to zero) needs spec.autoscaling."
    "targetRequestsPerSecond: CPU and memory cannot wake a model that has no pods",
    field_path=".minReplicas",
)


class AutoscalingSpec(SpecModel):
    """Autoscaling of every live version by a HorizontalPodAutoscaler (autoscaling/v2).

    While set, the autoscaler owns the replica count and spec.replicas is not used. During a
    canary rollout the canary gets its own autoscaler with these bounds scaled by its weight.
    """

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            AUTOSCALING_BOUNDS_RULE, AUTOSCALING_TARGET_RULE, SCALE_TO_ZERO_RULE
        )
    )

    min_replicas: int = Field(
        default=1,
        description="Fewest pods per version. 0 asks for scale to zero, which needs KEDA and "
        "targetRequestsPerSecond; without KEDA the operator keeps one pod and says so in status.",
        ge=0,
        le=MAX_REPLICAS,
    )
    max_replicas: int = Field(description="Most pods per version.", ge=1, le=MAX_REPLICAS)
    target_cpu_utilization_percentage: int | None = Field(
        default=None,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU use the autoscaler aims for, in percent of the CPU request "
        "(may exceed 100 when limits are above requests).",
        ge=1,
        le=1000,
    )
    target_memory_utilization_percentage: int | None = Field(
        default=None,
        alias="targetMemoryUtilizationPercentage",
        description="Average memory use the autoscaler aims for, in percent of the memory request.",
        ge=1,
        le=1000,
    )
    target_requests_per_second: float | None = Field(
        default=None,
        description="Requests per second per pod the autoscaler aims for (a Pods metric "
        "modeldeploy_requests_per_second served by prometheus-adapter).",
        gt=0,
        le=1_000_000,
    )

    @model_validator(mode="after")
    def _rules(self) -> AutoscalingSpec:
        AUTOSCALING_BOUNDS_RULE.require(self.min_replicas <= self.max_replicas)
        AUTOSCALING_TARGET_RULE.require(
            self.target_cpu_utilization_percentage is not None
            or self.target_memory_utilization_percentage is not None
            or self.target_requests_per_second is not None
        )
        SCALE_TO_ZERO_RULE.require(
            self.min_replicas > 0 or self.target_requests_per_second is not None
        )
        return self


RESOURCE_NAMES: Final = ("cpu", "memory", "ephemeral-storage")


def _resource_names_rule(path: str) -> Rule:
    return Rule(
        "self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-')"
        " || k.contains('/'))",
        f"{path} keys must be cpu, memory, ephemeral-storage, hugepages-<size> or an extended "
        "resource such as nvidia.com/gpu",
    )


REQUESTS_WITHIN_LIMITS_RULE = Rule(
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
            all(k in RESOURCE_NAMES or k.startswith("hugepages-") or "/" in k for k in resources)
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
        pattern=r"^[-._a-zA-Z0-9]+$",
        max_length=253,
    )


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeySelector = Field(
        description="Take the value from a Secret key (credentials for s3://, gs:// or an MLflow "
        "registry)."
    )


ENV_VALUE_RULE = Rule(
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


RESERVED_ENV_RULE = Rule(
    "self.all(e, !(e.name in ['" + "', '".join(RESERVED_ENV) + "']))",
    "spec.server.env must not set " + " or ".join(RESERVED_ENV) + " (the operator sets them)",
)


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


TOLERATION_EXISTS_RULE = Rule(
    "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
    "spec.server.tolerations: operator Exists takes no value",
)
MAX_TOLERATIONS: Final = 32
MAX_NODE_SELECTOR: Final = 32


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


STEPS_RULE = Rule(
    "self.isSorted() && self.all(s, self.exists_one(t, t == s))",
    "spec.rollout.steps must be strictly increasing",
)


class SuccessRateCheck(SpecModel):
    """Canary success rate: percent of its responses that are neither 5xx nor (unless ignored)
    4xx. A version that refuses the requests stable serves (a model retrained on other
    features answers 400) fails the canary like one that crashes."""

    min: float = Field(
        description="Lowest acceptable success rate, in percent (e.g. 99).", ge=0, le=100
    )
    client_errors: ClientErrorPolicy = Field(
        default=ClientErrorPolicy.COUNT,
        description="Count: 4xx answers are failures. Ignore: only 5xx are, for clients that "
        "often send invalid requests; compareWithStable still judges the canary's 4xx against "
        "stable's.",
    )


class LatencyCheck(SpecModel):
    """Canary 99th-percentile latency."""

    max: float = Field(description="Highest acceptable p99 latency in milliseconds.", gt=0)


class StableComparisonCheck(SpecModel):
    """The canary compared with the stable version over the same window: its 5xx rate, and its
    4xx rate (client errors stable does not produce on the same traffic are the canary's)."""

    max_error_rate_increase: float = Field(
        description="How many percentage points the canary's 5xx rate may exceed stable's.",
        ge=0,
        le=100,
    )
    max_client_error_rate_increase: float | None = Field(
        default=None,
        description="How many percentage points the canary's 4xx rate may exceed stable's; "
        "default: maxErrorRateIncrease.",
        ge=0,
        le=100,
    )

    @property
    def client_error_bound(self) -> float:
        if self.max_client_error_rate_increase is None:
            return self.max_error_rate_increase
        return self.max_client_error_rate_increase


class DriftCheck(SpecModel):
    """Drift of the canary's prediction distribution against stable's, as PSI."""

    max_psi: float = Field(
        description="Highest acceptable population stability index (0.1 small, 0.25 large).",
        gt=0,
        le=10,
    )


ANALYSIS_CHECK_RULE = Rule(
    "has(self.successRate) || has(self.latencyP99Ms) || has(self.compareWithStable)"
    " || has(self.drift)",
    "spec.rollout.analysis needs at least one check: successRate, latencyP99Ms, "
    "compareWithStable or drift",
)


class AnalysisSpec(SpecModel):
    """Checks run on Prometheus before every step; a failing check counts towards rollback."""

    model_config = ConfigDict(json_schema_extra=cel_rules(ANALYSIS_CHECK_RULE))

    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus to query (http(s)://HOST[:PORT]); default from the operator's "
        "configuration.",
        pattern=HTTP_URL_PATTERN,
        max_length=MAX_URI_LENGTH,
    )
    interval: str | None = _duration_field(
        None,
        description="Window each query looks back over (e.g. 1m); default: spec.rollout."
        "stepInterval.",
        path="spec.rollout.analysis.interval",
    )
    success_rate: SuccessRateCheck | None = Field(
        default=None,
        description="Fail when the canary's percentage of answers that are neither 5xx nor "
        "(unless clientErrors is Ignore) 4xx is below min.",
    )
    latency_p99_ms: LatencyCheck | None = Field(
        default=None, description="Fail when the canary's p99 latency is above max milliseconds."
    )
    compare_with_stable: StableComparisonCheck | None = Field(
        default=None,
        description="Fail when the canary's 5xx or 4xx rate is worse than stable's by a margin.",
    )
    drift: DriftCheck | None = Field(
        default=None,
        description="Fail when the canary's predictions drift from stable's by more than maxPsi.",
    )
    max_failed_checks: int = Field(
        default=2,
        description="Failed checks (counted over the whole rollout) that trigger rollback.",
        ge=1,
        le=100,
    )
    no_data: NoDataPolicy = Field(
        default=NoDataPolicy.FAIL,
        description="What an empty query result means: Fail counts a failed check, Pass lets the "
        "step advance, Hold waits without counting (until progressDeadline).",
    )

    @model_validator(mode="after")
    def _rules(self) -> AnalysisSpec:
        _check_duration_range(self.interval, "spec.rollout.analysis.interval")
        ANALYSIS_CHECK_RULE.require(
            any(
                check is not None
                for check in (
                    self.success_rate,
                    self.latency_p99_ms,
                    self.compare_with_stable,
                    self.drift,
                )
            )
        )
        return self


class RolloutSpec(SpecModel):
    """How a new version replaces the stable one."""

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.CANARY,
        description="Canary moves traffic through steps with analysis before each; Immediate "
        "switches all traffic once the new version is ready.",
    )
    steps: list[Annotated[int, Field(ge=1, le=99)]] = Field(
        default_factory=lambda: [10, 25, 50],
        description="Canary traffic percent per step, strictly increasing within 1..99; after "
        "the last step the canary is promoted to 100%.",
        min_length=1,
        max_length=MAX_STEPS,
        json_schema_extra={"default": [10, 25, 50], **cel_rules(STEPS_RULE)},
    )
    step_interval: str = _duration_field(
        "60s",
        description="Time spent at each step before analysis and the next step (e.g. 30s, 5m).",
        path="spec.rollout.stepInterval",
    )
    progress_deadline: str = _duration_field(
        "10m",
        description="How long a version may take to become ready (or analysis may hold) before "
        "the rollout fails and rolls back; also the Deployments' progress deadline.",
        path="spec.rollout.progressDeadline",
    )
    scale_down_delay: str = _duration_field(
        "30s",
        description="How long a version that no longer receives traffic (the old stable after "
        "promotion, a rolled-back canary) keeps running before its Deployment is deleted, so "
        "that routers and endpoints have moved every request off it (0s: at once).",
        path="spec.rollout.scaleDownDelay",
        minimum="0s",
    )
    paused: bool = Field(
        default=False, description="Hold the rollout at its current step (GitOps-friendly pause)."
    )
    analysis: AnalysisSpec | None = Field(
        default=None,
        description="Metric checks before each step; absent → steps advance on time and "
        "readiness alone.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        STEPS_RULE.require(all(a < b for a, b in itertools.pairwise(steps)))
        return steps

    @model_validator(mode="after")
    def _rules(self) -> RolloutSpec:
        _check_duration_range(self.step_interval, "spec.rollout.stepInterval")
        _check_duration_range(self.progress_deadline, "spec.rollout.progressDeadline")
        _check_duration_range(self.scale_down_delay, "spec.rollout.scaleDownDelay", "0s")
        return self


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


GATEWAY_REF_REQUIRED_RULE = Rule(
    "self.router != 'GatewayAPI' || has(self.gatewayRef)",
    "spec.traffic.gatewayRef is required when spec.traffic.router is GatewayAPI",
    field_path=".gatewayRef",
)
GATEWAY_REF_UNUSED_RULE = Rule(
    "self.router != 'ReplicaRatio' || !has(self.gatewayRef)",
    "spec.traffic.gatewayRef is not used by router ReplicaRatio: remove it or use GatewayAPI",
    field_path=".gatewayRef",
)
MIRROR_NEEDS_GATEWAY_RULE = Rule(
    "self.mirrorPercent == 0 || has(self.gatewayRef)",
    "spec.traffic.mirrorPercent > 0 needs the Gateway API router: set spec.traffic.gatewayRef "
    "with router GatewayAPI or Auto",
    field_path=".mirrorPercent",
)
HOSTNAMES_NEED_GATEWAY_RULE = Rule(
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


def _prometheus_duration(default: str, description: str) -> Any:
    return Field(
        default=default, description=description, pattern=PROMETHEUS_DURATION_PATTERN, max_length=32
    )


class MonitoringThresholds(SpecModel):
    """Thresholds and `for` durations of the generated alerts."""

    error_rate_percent: float = Field(
        default=5,
        description="Alert when more than this percent of requests fail (5xx).",
        gt=0,
        le=100,
    )
    error_rate_for: str = _prometheus_duration("5m", "How long the error rate must stay high.")
    latency_p99_ms: float = Field(
        default=500, description="Alert when p99 latency exceeds this many milliseconds.", gt=0
    )
    latency_for: str = _prometheus_duration("5m", "How long p99 latency must stay high.")
    drift_psi: float = Field(
        default=0.25, description="Alert when any feature's PSI drift exceeds this.", gt=0, le=10
    )
    drift_for: str = _prometheus_duration("15m", "How long drift must stay high.")
    unavailable_for: str = _prometheus_duration(
        "5m", "How long a version may have no ready pod or no loaded model before alerting."
    )


class MonitoringSpec(SpecModel):
    """Scrape objects and alert rules for the Prometheus Operator."""

    service_monitor: MonitoringMode = Field(
        default=MonitoringMode.AUTO,
        description="Auto: create a ServiceMonitor when its CRD exists; Enabled: always (status "
        "reports a missing CRD); Disabled: never.",
    )
    rules: MonitoringMode = Field(
        default=MonitoringMode.AUTO,
        description="Auto: create a PrometheusRule with the default alerts when its CRD exists; "
        "Enabled: always; Disabled: never.",
    )
    thresholds: MonitoringThresholds = Field(
        default_factory=lambda: MonitoringThresholds(),
        description="Thresholds and durations of the alerts.",
        json_schema_extra={"default": wire_default(MonitoringThresholds)},
    )


class ServingTemplate(SpecModel):
    """What a serving pod runs: the model and the server knobs. `status.stableServing` keeps the
    one the stable version runs, so a restarted operator or a rollout never loses it."""

    model: ModelSpec = Field(description="The model version and its artifact.")
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


REPLICAS_WITHIN_AUTOSCALING_RULE = Rule(
    "!has(self.autoscaling) || self.replicas <= self.autoscaling.maxReplicas",
    "spec.replicas must be <= spec.autoscaling.maxReplicas (while autoscaling is set the "
    "autoscaler owns the replica count)",
    field_path=".replicas",
)


class ModelDeploymentSpec(SpecModel):
    """The desired state: which model version serves, how many pods, how it rolls out."""

    model_config = ConfigDict(json_schema_extra=cel_rules(REPLICAS_WITHIN_AUTOSCALING_RULE))

    model: ModelSpec = Field(description="The model version to serve and its artifact.")
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
        """The template the spec asks every pod of the desired version to run."""
        return ServingTemplate(model=self.model, server=self.server)


# ---------------------------------------------------------------------------------------------
# Status.


class StatusModel(BaseModel):
    """Base of status models: camelCase, unknown fields ignored (written by other versions)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(StatusModel):
    """A Kubernetes condition (metav1.Condition shape)."""

    type: str = Field(description="Ready, Progressing or Degraded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="CamelCase reason a program can match on.")
    message: str | None = Field(
        default=None, description="What happened and what to do, for humans."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed for."
    )


class AnalysisCheckResult(StatusModel):
    """One check of one analysis run."""

    name: str = Field(
        description="successRate, latencyP99Ms, compareWithStable, "
        "compareClientErrorsWithStable, drift or another check."
    )
    value: float | None = Field(
        default=None, description="Measured value; absent when there was no data."
    )
    threshold: float | None = Field(default=None, description="The limit it was compared with.")
    passed: bool = Field(description="Whether the check passed.")
    message: str | None = Field(default=None, description="Why it passed or failed.")


class AnalysisResult(StatusModel):
    """The latest analysis run: measured values and the verdict."""

    time: datetime | None = Field(default=None, description="When the analysis ran.")
    canary_version: str | None = Field(default=None, description="The canary version analysed.")
    step: int | None = Field(default=None, description="The step (index into spec.rollout.steps).")
    passed: bool = Field(description="Whether every check passed.")
    success_rate: float | None = Field(
        default=None,
        description="Canary percentage of answers that are not 5xx (nor 4xx, unless "
        "successRate.clientErrors is Ignore).",
    )
    latency_p99_ms: float | None = Field(
        default=None, description="Canary p99 latency in milliseconds."
    )
    error_rate_increase: float | None = Field(
        default=None, description="Canary 5xx rate minus stable's, in percentage points."
    )
    client_error_rate_increase: float | None = Field(
        default=None, description="Canary 4xx rate minus stable's, in percentage points."
    )
    drift_psi: float | None = Field(
        default=None, description="PSI of canary vs stable predictions."
    )
    checks: list[AnalysisCheckResult] = Field(
        default_factory=list, description="Every check with its value and verdict."
    )
    message: str | None = Field(default=None, description="Summary for humans.")


class PauseCondition(StatusModel):
    """One reason a canary is held at its step, and since when."""

    reason: PauseReason = Field(description="Paused (spec.rollout.paused) or PausedByRequest.")
    start_time: datetime | None = Field(default=None, description="When the pause began.")


class ModelDeploymentStatus(StatusModel):
    """The observed state, written by the operator only."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the status was computed for."
    )
    phase: Phase | None = Field(
        default=None, description="Pending, Progressing, Ready, Degraded or Failed."
    )
    stable_version: str | None = Field(
        default=None, description="The version serving stable traffic."
    )
    stable_serving: ServingTemplate | None = Field(
        default=None, description="What the stable version's pods run (model and server template)."
    )
    canary_version: str | None = Field(
        default=None,
        description="The version being rolled out; absent when no rollout is in progress.",
    )
    canary_serving: ServingTemplate | None = Field(
        default=None,
        description="What the canary's pods run; absent when no rollout is in progress.",
    )
    canary_weight: int | None = Field(default=None, description="Percent of traffic on the canary.")
    current_step: int | None = Field(
        default=None, description="Index into spec.rollout.steps of the current step."
    )
    step_started_at: datetime | None = Field(
        default=None,
        description="When the current step (or the rollout's wait for readiness) began.",
    )
    failed_checks: int | None = Field(
        default=None, description="Failed analysis checks so far in this rollout."
    )
    failed_serving_hash: str | None = Field(
        default=None,
        description="Fingerprint of the serving template whose rollout was rolled back; it is "
        "not retried until the spec changes.",
    )
    last_analysis: AnalysisResult | None = Field(
        default=None, description="The latest analysis run."
    )
    pause_conditions: list[PauseCondition] | None = Field(
        default=None,
        description="Why the rollout holds its step (as Argo Rollouts' status.pauseConditions); "
        "absent when it does not.",
    )
    last_request_id: str | None = Field(
        default=None,
        description="The last `kubectl modeldeploy` request (annotation "
        "modeldeploy.dev/request-id) the operator acted on; each request is acted on once.",
    )
    url: str | None = Field(default=None, description="In-cluster URL of the model's Service.")
    replicas: int | None = Field(
        default=None, description="Ready pods of the stable version (scale subresource)."
    )
    selector: str | None = Field(
        default=None, description="Label selector of the stable version's pods (scale subresource)."
    )
    monitoring: str | None = Field(
        default=None,
        description="State of the scrape objects and alert rules (e.g. Enabled, Disabled, or why "
        "they are unavailable).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing and Degraded conditions.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


# ---------------------------------------------------------------------------------------------
# The whole object.


class ObjectMeta(BaseModel):
    """The metadata the operator reads (everything else is ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


NAME_RULE = Rule(
    "self.metadata.name.matches('" + NAME_PATTERN + "') && size(self.metadata.name) <= 63",
    "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
    "letter, at most 63 characters): it names the model's Service",
)


class ModelDeployment(BaseModel):
    """A ModelDeployment as read from the apiserver."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=lambda: ModelDeploymentStatus())

    @field_validator("metadata")
    @classmethod
    def _name(cls, metadata: ObjectMeta) -> ObjectMeta:
        NAME_RULE.require(
            len(metadata.name) <= 63 and re.search(NAME_PATTERN, metadata.name) is not None
        )
        return metadata
