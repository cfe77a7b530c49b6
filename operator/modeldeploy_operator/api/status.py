"""The status: what the operator observed and decided, written by the operator only."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modeldeploy_operator.api.base import StatusModel
from modeldeploy_operator.api.spec import ServingTemplate


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


class ResolvedVersion(StatusModel):
    """What the followed registry reference resolved to, as pinned for the pods."""

    alias: str | None = Field(default=None, description="The alias followed, if any.")
    version: str = Field(description="The registered version it pointed at.")
    run_id: str | None = Field(default=None, description="The MLflow run that logged it.")
    artifact_uri: str = Field(
        description="Where the registry keeps its files (its download URI, e.g. "
        "mlflow-artifacts:/...)."
    )
    model_file_uri: str = Field(
        description="The model file the pods download through the registry's artifact proxy "
        "(their pinned storageUri)."
    )
    sha256: str = Field(description="SHA-256 of its model file, pinned on every pod.")
    resolved_at: datetime | None = Field(
        default=None, description="When the operator first resolved the reference to it."
    )


class RejectedVersion(StatusModel):
    """A registry version whose rollout failed: not retried while the reference still points
    at it, unless spec.model.source.retry changes."""

    version: str = Field(description="The registered version.")
    digest: str = Field(description="SHA-256 of its model file.")
    reason: str = Field(description="Why its rollout failed (the rollback's reason and message).")
    time: datetime | None = Field(default=None, description="When it was rolled back.")
    retry: str | None = Field(
        default=None, description="spec.model.source.retry when it was rejected."
    )


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
    resolved: ResolvedVersion | None = Field(
        default=None,
        description="What spec.model.source resolved to (absent when the spec names a version).",
    )
    rejected: list[RejectedVersion] | None = Field(
        default=None,
        description="Registry versions whose rollout failed, newest last (spec.model.source).",
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
        description="Ready, Progressing and Degraded conditions; SourceReachable and "
        "InSyncWithRegistry with spec.model.source.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
