"""The ModelDeployment API (`modeldeploy.dev/v1alpha1`): the single source of truth.

Owns every field of spec and status: names, descriptions (what `kubectl explain` prints),
defaults, enums, bounds and patterns, and every cross-field rule. A cross-field rule is written
once as a `Rule`: its CEL expression goes into the CRD (`crdgen`), so the apiserver rejects a bad
manifest with the rule's message, and its Python twin runs in a pydantic validator with the same
message, so the operator, the tests and the kubectl plugin agree with the apiserver.

One module per concern; this package re-exports what the rest of the operator imports:

- `rules`: the `Rule` machinery and the CEL spellings of Python values;
- `limits`: the bounds that keep CEL inside the apiserver's cost budget;
- `units`: durations and quantities (pattern, parser, field type);
- `patterns`: names and identifiers;
- `storage`: the storageUri grammar, its rules and the pvc:// parser;
- `base`: what spec and status models share (spec frozen and strict, status lenient);
- `source`: a model registry spec.model follows instead of naming a version;
- `model`, `server`, `autoscaling`, `rollout`, `traffic`, `monitoring`: the spec's sections;
- `spec`: the whole spec and the serving template; `status`: the status;
- `resource`: group, version, kind and names, the metadata read, the whole object.
"""

from __future__ import annotations

from modeldeploy_serving.contract import ENV_MODEL, ENV_VERSION

from modeldeploy_operator.api.autoscaling import (
    AUTOSCALING_BOUNDS_RULE,
    AUTOSCALING_TARGET_RULE,
    SCALE_TO_ZERO_RULE,
    AutoscalingSpec,
)
from modeldeploy_operator.api.base import (
    SpecModel,
    StatusModel,
    wire_default,
)
from modeldeploy_operator.api.limits import (
    MAX_ENV,
    MAX_HOSTNAMES,
    MAX_NODE_SELECTOR,
    MAX_REPLICAS,
    MAX_RESOURCE_NAMES,
    MAX_STEPS,
    MAX_TOLERATIONS,
    MAX_URI_LENGTH,
    MAX_VERSION_LENGTH,
)
from modeldeploy_operator.api.model import (
    MODEL_ORIGIN_RULE,
    MODEL_RULES,
    SHA256_WITH_STORAGE_RULE,
    VERSION_WITH_STORAGE_RULE,
    ModelFormat,
    ModelSpec,
    PinnedModel,
)
from modeldeploy_operator.api.monitoring import (
    MonitoringMode,
    MonitoringSpec,
    MonitoringThresholds,
)
from modeldeploy_operator.api.patterns import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENV_NAME_PATTERN,
    HOSTNAME_PATTERN,
    HTTP_URL_PATTERN,
    NAME_PATTERN,
    SHA256_PATTERN,
    VERSION_PATTERN,
)
from modeldeploy_operator.api.resource import (
    API_VERSION,
    CATEGORIES,
    GROUP,
    KIND,
    NAME_RULE,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    ModelDeployment,
    ObjectMeta,
)
from modeldeploy_operator.api.rollout import (
    ANALYSIS_CHECK_RULE,
    STEPS_RULE,
    AnalysisSpec,
    ClientErrorPolicy,
    DriftCheck,
    LatencyCheck,
    NoDataPolicy,
    RolloutSpec,
    RolloutStrategy,
    StableComparisonCheck,
    SuccessRateCheck,
)
from modeldeploy_operator.api.rules import (
    Rule,
    cel_rules,
)
from modeldeploy_operator.api.server import (
    ENV_VALUE_RULE,
    REQUESTS_WITHIN_LIMITS_RULE,
    RESERVED_ENV,
    RESERVED_ENV_RULE,
    RESOURCE_NAMES,
    TOLERATION_EXISTS_RULE,
    EnvVar,
    EnvVarSource,
    PullPolicy,
    ResourceRequirements,
    SecretKeySelector,
    ServerSpec,
    TaintEffect,
    Toleration,
    TolerationOperator,
)
from modeldeploy_operator.api.source import (
    FOLLOW_ONE_RULE,
    CredentialsSecretRef,
    MlflowFollow,
    MlflowSource,
    ModelSource,
)
from modeldeploy_operator.api.spec import (
    REPLICAS_WITHIN_AUTOSCALING_RULE,
    ModelDeploymentSpec,
    ServingTemplate,
)
from modeldeploy_operator.api.status import (
    AnalysisCheckResult,
    AnalysisResult,
    Condition,
    ConditionStatus,
    ModelDeploymentStatus,
    PauseCondition,
    PauseReason,
    Phase,
    RejectedVersion,
    ResolvedVersion,
)
from modeldeploy_operator.api.storage import (
    STORAGE_SCHEMES,
    STORAGE_URI_RULES,
    URI_BUCKET_RULE,
    URI_FILE_RULE,
    URI_HTTP_RULE,
    URI_PVC_RULE,
    URI_REGISTRY_RULE,
    URI_SCHEME_RULE,
    URI_WHITESPACE_RULE,
    PvcLocation,
    parse_pvc_uri,
)
from modeldeploy_operator.api.traffic import (
    GATEWAY_REF_REQUIRED_RULE,
    GATEWAY_REF_UNUSED_RULE,
    HOSTNAMES_NEED_GATEWAY_RULE,
    MIRROR_NEEDS_GATEWAY_RULE,
    GatewayRef,
    TrafficRouter,
    TrafficSpec,
)
from modeldeploy_operator.api.units import (
    DURATION_PATTERN,
    PROMETHEUS_DURATION_PATTERN,
    QUANTITY_PATTERN,
    Quantity,
    parse_duration,
    parse_quantity,
)

__all__ = [
    "ANALYSIS_CHECK_RULE",
    "API_VERSION",
    "AUTOSCALING_BOUNDS_RULE",
    "AUTOSCALING_TARGET_RULE",
    "CATEGORIES",
    "DNS_LABEL_PATTERN",
    "DNS_SUBDOMAIN_PATTERN",
    "DURATION_PATTERN",
    "ENV_MODEL",
    "ENV_NAME_PATTERN",
    "ENV_VALUE_RULE",
    "ENV_VERSION",
    "FOLLOW_ONE_RULE",
    "GATEWAY_REF_REQUIRED_RULE",
    "GATEWAY_REF_UNUSED_RULE",
    "GROUP",
    "HOSTNAMES_NEED_GATEWAY_RULE",
    "HOSTNAME_PATTERN",
    "HTTP_URL_PATTERN",
    "KIND",
    "MAX_ENV",
    "MAX_HOSTNAMES",
    "MAX_NODE_SELECTOR",
    "MAX_REPLICAS",
    "MAX_RESOURCE_NAMES",
    "MAX_STEPS",
    "MAX_TOLERATIONS",
    "MAX_URI_LENGTH",
    "MAX_VERSION_LENGTH",
    "MIRROR_NEEDS_GATEWAY_RULE",
    "MODEL_ORIGIN_RULE",
    "MODEL_RULES",
    "NAME_PATTERN",
    "NAME_RULE",
    "PLURAL",
    "PROMETHEUS_DURATION_PATTERN",
    "QUANTITY_PATTERN",
    "REPLICAS_WITHIN_AUTOSCALING_RULE",
    "REQUESTS_WITHIN_LIMITS_RULE",
    "RESERVED_ENV",
    "RESERVED_ENV_RULE",
    "RESOURCE_NAMES",
    "SCALE_TO_ZERO_RULE",
    "SHA256_PATTERN",
    "SHA256_WITH_STORAGE_RULE",
    "SHORT_NAMES",
    "SINGULAR",
    "STEPS_RULE",
    "STORAGE_SCHEMES",
    "STORAGE_URI_RULES",
    "TOLERATION_EXISTS_RULE",
    "URI_BUCKET_RULE",
    "URI_FILE_RULE",
    "URI_HTTP_RULE",
    "URI_PVC_RULE",
    "URI_REGISTRY_RULE",
    "URI_SCHEME_RULE",
    "URI_WHITESPACE_RULE",
    "VERSION",
    "VERSION_PATTERN",
    "VERSION_WITH_STORAGE_RULE",
    "AnalysisCheckResult",
    "AnalysisResult",
    "AnalysisSpec",
    "AutoscalingSpec",
    "ClientErrorPolicy",
    "Condition",
    "ConditionStatus",
    "CredentialsSecretRef",
    "DriftCheck",
    "EnvVar",
    "EnvVarSource",
    "GatewayRef",
    "LatencyCheck",
    "MlflowFollow",
    "MlflowSource",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelFormat",
    "ModelSource",
    "ModelSpec",
    "MonitoringMode",
    "MonitoringSpec",
    "MonitoringThresholds",
    "NoDataPolicy",
    "ObjectMeta",
    "PauseCondition",
    "PauseReason",
    "Phase",
    "PinnedModel",
    "PullPolicy",
    "PvcLocation",
    "Quantity",
    "RejectedVersion",
    "ResolvedVersion",
    "ResourceRequirements",
    "RolloutSpec",
    "RolloutStrategy",
    "Rule",
    "SecretKeySelector",
    "ServerSpec",
    "ServingTemplate",
    "SpecModel",
    "StableComparisonCheck",
    "StatusModel",
    "SuccessRateCheck",
    "TaintEffect",
    "Toleration",
    "TolerationOperator",
    "TrafficRouter",
    "TrafficSpec",
    "cel_rules",
    "parse_duration",
    "parse_pvc_uri",
    "parse_quantity",
    "wire_default",
]
