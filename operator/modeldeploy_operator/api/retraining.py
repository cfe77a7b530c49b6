"""`RetrainingPolicy` and `RetrainingRun`: retrain a model on drift, behind an evaluation gate.

A RetrainingPolicy (written by the user) targets a ModelDeployment that follows an MLflow alias
(spec.model.source), and says when to retrain (triggers), when not to (guards), how (the user's
training Job) and what a candidate must prove (the evaluation gate). Each trigger the guards let
through makes a RetrainingRun (written by the operator, once, with a snapshot of the policy: an
audit object like Argo Rollouts' AnalysisRun, which later edits of the policy do not change).

A run goes Training → Evaluating → GateFailed | Promoting → Promoted | RolledBack (or Failed when
a Job fails or a step times out); `retraining.machine` owns the transitions.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from modeldeploy_serving.contract import GREATER_IS_BETTER
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from modeldeploy_operator.api.base import SpecModel, StatusModel
from modeldeploy_operator.api.cron import CRON_PATTERN, TIME_ZONE_PATTERN, CronError, parse_cron
from modeldeploy_operator.api.limits import MAX_NAME_LENGTH, MAX_URI_LENGTH
from modeldeploy_operator.api.patterns import HTTP_URL_PATTERN, NAME_PATTERN, SHA256_PATTERN
from modeldeploy_operator.api.resource import GROUP, VERSION, ObjectMeta
from modeldeploy_operator.api.rules import Rule, cel_matches, cel_rules, cel_string
from modeldeploy_operator.api.source import CredentialsSecretRef
from modeldeploy_operator.api.status import Condition
from modeldeploy_operator.api.units import check_duration_range, duration_field

POLICY_KIND: Final = "RetrainingPolicy"
POLICY_PLURAL: Final = "retrainingpolicies"
POLICY_SINGULAR: Final = "retrainingpolicy"
POLICY_SHORT_NAMES: Final = ("rtp",)
RUN_KIND: Final = "RetrainingRun"
RUN_PLURAL: Final = "retrainingruns"
RUN_SINGULAR: Final = "retrainingrun"
RUN_SHORT_NAMES: Final = ("rtr",)

# A run is named `<policy>-<unix seconds of the trigger>` and its Jobs `<run>-train` and
# `<run>-eval`; a Job's name becomes a pod label value (at most 63 characters).
MAX_POLICY_NAME_LENGTH: Final = 40
MAX_GATE_METRICS: Final = len(GREATER_IS_BETTER)
MAX_QUERY_LENGTH: Final = 4096
MAX_GUARD_DURATION: Final = "168h"
MAX_ALIAS_LENGTH: Final = 255
MAX_LABEL_VALUE_LENGTH: Final = 1024
MAX_ALERT_MATCHERS: Final = 16

POLICY_NAME_RULE: Final = Rule(
    f"self.metadata.name.matches({cel_string(NAME_PATTERN)})"
    f" && size(self.metadata.name) <= {MAX_POLICY_NAME_LENGTH}",
    "metadata.name must be a DNS-1035 label of at most "
    f"{MAX_POLICY_NAME_LENGTH} characters: it prefixes the names of its runs and their Jobs",
)
ONE_TRIGGER_RULE: Final = Rule(
    "has(self.metric) || has(self.alertmanager) || has(self.schedule)",
    "spec.triggers needs at least one trigger (metric, alertmanager or schedule)",
)
GATE_METRIC_NAMES_RULE: Final = Rule(
    "self.all(m, self.exists_one(n, n.name == m.name))",
    "spec.evaluation.metrics names each metric at most once",
)
RUN_SPEC_IMMUTABLE_RULE: Final = Rule(
    "self == oldSelf", "a RetrainingRun's spec is a record: it cannot change"
)


class GateMetricName(StrEnum):
    """The metrics the evaluator computes (`modeldeploy evaluate`)."""

    ACCURACY = "accuracy"
    BALANCED_ACCURACY = "balancedAccuracy"
    F1_MACRO = "f1Macro"
    LOG_LOSS = "logLoss"
    R2 = "r2"
    MEAN_ABSOLUTE_ERROR = "meanAbsoluteError"
    ROOT_MEAN_SQUARED_ERROR = "rootMeanSquaredError"

    @property
    def greater_is_better(self) -> bool:
        return GREATER_IS_BETTER[self.value]


class TargetRef(SpecModel):
    """The ModelDeployment (same namespace) whose followed alias the policy moves."""

    name: str = Field(
        description="The ModelDeployment's name; it must follow an MLflow alias "
        "(spec.model.source.mlflow.follow.alias).",
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
    )


class MetricTrigger(SpecModel):
    """A PromQL condition held for a duration: the largest sample above a threshold."""

    query: str | None = Field(
        default=None,
        description="PromQL; its largest sample is compared with `above`. Absent: the largest "
        "input-drift PSI (modeldeploy_feature_drift) of the target's pods.",
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
    )
    above: float = Field(description="The trigger fires when the value stays above this.")
    hold_for: str = duration_field(
        "1m",
        description="How long the value must stay above the threshold before a run starts.",
        path="spec.triggers.metric.holdFor",
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus's address; default the operator's --prometheus-url.",
        pattern=HTTP_URL_PATTERN,
        max_length=MAX_URI_LENGTH,
    )

    @model_validator(mode="after")
    def _rules(self) -> MetricTrigger:
        check_duration_range(self.hold_for, "spec.triggers.metric.holdFor")
        return self


class AlertmanagerTrigger(SpecModel):
    """A named alert, as Alertmanager's webhook notifications deliver it to the operator's
    receiver. One firing of an alert (its fingerprint and start time) starts at most one run,
    however often Alertmanager repeats it."""

    alert_name: str = Field(
        description="The alert's `alertname` label.",
        min_length=1,
        max_length=MAX_LABEL_VALUE_LENGTH,
    )
    matchers: dict[str, str] = Field(
        default_factory=dict,
        description="Further labels the alert must carry, with exactly these values (e.g. "
        "`namespace: models`).",
        max_length=MAX_ALERT_MATCHERS,
    )


class ScheduleTrigger(SpecModel):
    """A standard five-field cron schedule: each scheduled time starts at most one run."""

    cron: str = Field(
        description="`minute hour day-of-month month day-of-week`, e.g. `0 3 * * 0` (Sundays "
        "at 03:00): lists, ranges, `*`, `/STEP`, month and weekday names.",
        pattern=CRON_PATTERN,
        max_length=256,
    )
    time_zone: str | None = Field(
        default=None,
        description="The IANA time zone the schedule reads in (e.g. `Europe/Paris`); default UTC.",
        pattern=TIME_ZONE_PATTERN,
        max_length=64,
    )

    @model_validator(mode="after")
    def _rules(self) -> ScheduleTrigger:
        try:
            parse_cron(self.cron, self.time_zone)
        except CronError as err:
            raise ValueError(f"spec.triggers.schedule: {err}") from err
        return self


class Triggers(SpecModel):
    """What starts a run (each is checked every pass; the guards decide whether one may start)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(ONE_TRIGGER_RULE))

    metric: MetricTrigger | None = Field(
        default=None, description="A PromQL condition held for a duration (e.g. drift)."
    )
    alertmanager: AlertmanagerTrigger | None = Field(
        default=None,
        description="A named alert, delivered by Alertmanager to the operator's webhook "
        "receiver (docs/retraining.md).",
    )
    schedule: ScheduleTrigger | None = Field(default=None, description="A cron schedule.")

    @model_validator(mode="after")
    def _rules(self) -> Triggers:
        ONE_TRIGGER_RULE.require(
            self.metric is not None or self.alertmanager is not None or self.schedule is not None
        )
        return self


class Guards(SpecModel):
    """When a trigger does not start a run. A run never starts while another of the policy's
    runs is in progress or while the target is rolling out."""

    cooldown: str = duration_field(
        "1h",
        description="After a run starts, triggers within this time are suppressed.",
        path="spec.guards.cooldown",
        maximum=MAX_GUARD_DURATION,
    )
    max_runs: int = Field(
        default=3, ge=1, le=100, description="At most this many runs start within `window`."
    )
    window: str = duration_field(
        "24h",
        description="The window maxRuns counts in.",
        path="spec.guards.window",
        maximum=MAX_GUARD_DURATION,
    )
    suspend_after_failures: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Suspend the policy after this many consecutive runs that did not promote "
        "(Failed, GateFailed, RolledBack) since the policy's spec last changed; editing the "
        "policy (e.g. fixing the trainer) arms it again.",
    )

    @model_validator(mode="after")
    def _rules(self) -> Guards:
        check_duration_range(self.cooldown, "spec.guards.cooldown", maximum=MAX_GUARD_DURATION)
        check_duration_range(self.window, "spec.guards.window", maximum=MAX_GUARD_DURATION)
        return self


class TrainingSpec(SpecModel):
    """The user's training: a Job that trains a candidate and registers it in MLflow."""

    job_template: dict[str, Any] = Field(
        description="A batch/v1 JobSpec (template.spec.containers...). Its containers get "
        "MODELDEPLOY_RETRAINING_RUN (tag the registered version with "
        "modeldeploy.dev/retraining-run=<that value>), MODELDEPLOY_REGISTERED_MODEL and "
        "MLFLOW_TRACKING_URI, and the target's MLflow credentials from their Secret "
        "(MLFLOW_TRACKING_USERNAME and _PASSWORD, or _TOKEN).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    timeout: str = duration_field(
        "30m",
        description="The Job's activeDeadlineSeconds: a trainer running longer fails the run.",
        path="spec.training.timeout",
    )

    @field_validator("job_template")
    @classmethod
    def _has_containers(cls, template: dict[str, Any]) -> dict[str, Any]:
        containers = template.get("template", {}).get("spec", {}).get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("spec.training.jobTemplate needs template.spec.containers")
        return template

    @model_validator(mode="after")
    def _rules(self) -> TrainingSpec:
        check_duration_range(self.timeout, "spec.training.timeout")
        return self


class GateMetric(SpecModel):
    """One metric of the gate; its direction (greater or smaller is better) is the metric's."""

    name: GateMetricName = Field(description="The metric the evaluator computes.")
    threshold: float | None = Field(
        default=None,
        description="Absolute bar: the candidate must score at least this (at most, for a "
        "metric where smaller is better).",
    )
    min_improvement: float = Field(
        default=0.0,
        description="The candidate must beat the champion by at least this much, in the "
        "metric's better direction (0: at least as good).",
    )


class EvaluationGate(SpecModel):
    """What a candidate must prove on held-out data before the alias moves to it."""

    holdout_uri: str = Field(
        description="A CSV of held-out rows (features and the label column) the evaluator "
        "downloads; candidate and champion are scored on the same bytes.",
        pattern=HTTP_URL_PATTERN,
        max_length=MAX_URI_LENGTH,
    )
    holdout_sha256: str | None = Field(
        default=None,
        description="Pin the holdout file: the evaluator refuses other bytes.",
        pattern=SHA256_PATTERN,
    )
    label_column: str = Field(
        default="label", min_length=1, max_length=253, description="The CSV column to predict."
    )
    metrics: list[GateMetric] = Field(
        description="Every metric must pass; a metric the evaluator could not compute fails.",
        min_length=1,
        max_length=MAX_GATE_METRICS,
        json_schema_extra=cel_rules(GATE_METRIC_NAMES_RULE),
    )
    evaluator_image: str | None = Field(
        default=None,
        description="The image the evaluator Job runs; default the operator's server image.",
        min_length=1,
        max_length=MAX_URI_LENGTH,
    )
    timeout: str = duration_field(
        "10m", description="The evaluator Job's deadline.", path="spec.evaluation.timeout"
    )
    promotion_timeout: str = duration_field(
        "30m",
        description="After the alias moves, how long the target may take to promote or roll "
        "back the candidate before the run fails.",
        path="spec.evaluation.promotionTimeout",
    )

    @model_validator(mode="after")
    def _rules(self) -> EvaluationGate:
        names = [metric.name for metric in self.metrics]
        GATE_METRIC_NAMES_RULE.require(len(names) == len(set(names)))
        check_duration_range(self.timeout, "spec.evaluation.timeout")
        check_duration_range(self.promotion_timeout, "spec.evaluation.promotionTimeout")
        return self


class RetrainingPolicySpec(SpecModel):
    """Retrain the target's model when a trigger fires and the guards allow it."""

    target_ref: TargetRef = Field(description="The ModelDeployment to retrain.")
    triggers: Triggers = Field(description="What starts a run.")
    guards: Guards = Field(default_factory=Guards, description="What holds a run back.")
    training: TrainingSpec = Field(description="The user's training Job.")
    evaluation: EvaluationGate = Field(description="The gate a candidate must pass.")


class AlertOccurrence(SpecModel):
    """One firing of an alert: Alertmanager's fingerprint of its labels and its start time."""

    name: str = Field(description="The alert's name.")
    fingerprint: str = Field(description="Alertmanager's fingerprint of the alert's labels.")
    starts_at: datetime = Field(description="When the alert started firing.")


class TriggerRecord(StatusModel):
    """A trigger that fired: when, what it measured, and what became of it."""

    time: datetime | None = Field(default=None, description="When it fired.")
    source: str = Field(description="Which trigger (metric, alertmanager or schedule).")
    value: float | None = Field(default=None, description="The measured value.")
    threshold: float | None = Field(default=None, description="The threshold it crossed.")
    held_since: datetime | None = Field(
        default=None, description="Since when the value had been above the threshold."
    )
    query: str | None = Field(default=None, description="The PromQL evaluated.")
    alert: AlertOccurrence | None = Field(default=None, description="The alert that fired.")
    scheduled_time: datetime | None = Field(
        default=None, description="The scheduled time that came."
    )
    run: str | None = Field(default=None, description="The run it started, if any.")
    suppressed: str | None = Field(
        default=None, description="Why it started no run (a guard), if it did not."
    )


class RetrainingPolicyStatus(StatusModel):
    """What the operator observed and decided for the policy."""

    observed_generation: int | None = Field(default=None, description="The generation seen.")
    held_since: datetime | None = Field(
        default=None, description="Since when the value has been above the threshold."
    )
    last_trigger: TriggerRecord | None = Field(
        default=None, description="The latest trigger that fired."
    )
    next_eligible_time: datetime | None = Field(
        default=None, description="The earliest time the guards let a run start."
    )
    last_schedule_time: datetime | None = Field(
        default=None,
        description="The schedule's latest time already acted on (a run or a suppression), or "
        "when the schedule was first seen: no time up to it fires again, after a restart too.",
    )
    next_schedule_time: datetime | None = Field(
        default=None, description="The schedule's next time."
    )
    active_run: str | None = Field(default=None, description="The run in progress, if any.")
    consecutive_failures: int | None = Field(
        default=None, description="Runs in a row that did not promote, since the spec changed."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Armed, CoolingDown and Suspended; AlertReceiver with an alertmanager "
        "trigger (whether this operator serves the receiver its alerts come through).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class RunPhase(StrEnum):
    TRAINING = "Training"
    EVALUATING = "Evaluating"
    PROMOTING = "Promoting"
    GATE_FAILED = "GateFailed"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"

    @property
    def finished(self) -> bool:
        return self in FINISHED_PHASES


FINISHED_PHASES: Final = frozenset(
    {RunPhase.GATE_FAILED, RunPhase.PROMOTED, RunPhase.ROLLED_BACK, RunPhase.FAILED}
)


class TriggerSnapshot(SpecModel):
    """The trigger that started a run, as measured."""

    source: str = Field(description="Which trigger (metric, alertmanager or schedule).")
    fired_at: datetime = Field(description="When the run was started.")
    value: float | None = Field(default=None, description="metric: the measured value.")
    threshold: float | None = Field(default=None, description="metric: the threshold crossed.")
    held_since: datetime | None = Field(
        default=None, description="metric: since when it had been above the threshold."
    )
    query: str | None = Field(default=None, description="metric: the PromQL evaluated.")
    alert: AlertOccurrence | None = Field(
        default=None, description="alertmanager: the alert's firing that started the run."
    )
    scheduled_time: datetime | None = Field(
        default=None, description="schedule: the scheduled time that started the run."
    )

    def describe(self) -> str:
        """For humans: what started the run."""
        if self.alert is not None:
            return f"alert {self.alert.name} firing since {self.alert.starts_at:%Y-%m-%dT%H:%M:%SZ}"
        if self.scheduled_time is not None:
            return f"schedule at {self.scheduled_time:%Y-%m-%dT%H:%M:%SZ}"
        return f"{self.source} at {self.value:.4g} above {self.threshold:g}"


class RegistryRef(SpecModel):
    """The registry, model and alias the run retrains and moves (copied from the target)."""

    tracking_uri: str = Field(description="The MLflow tracking server.")
    registered_model: str = Field(description="The registered model.")
    alias: str = Field(description="The alias the target follows.", max_length=MAX_ALIAS_LENGTH)
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None,
        description="The Secret with the tracking server's credentials (the target's); the "
        "Jobs get its keys as MLFLOW_TRACKING_USERNAME, _PASSWORD and _TOKEN from the Secret.",
    )


class RetrainingRunSpec(SpecModel):
    """A record of why and how the run was started, written once by the operator."""

    model_config = ConfigDict(json_schema_extra=cel_rules(RUN_SPEC_IMMUTABLE_RULE))

    policy: str = Field(description="The RetrainingPolicy that started the run.")
    policy_generation: int = Field(description="Its metadata.generation then.")
    target_ref: TargetRef = Field(description="The ModelDeployment retrained.")
    registry: RegistryRef = Field(description="Where the candidate is registered.")
    trigger: TriggerSnapshot = Field(description="What started the run.")
    training: TrainingSpec = Field(description="The policy's training, as it was.")
    evaluation: EvaluationGate = Field(description="The policy's gate, as it was.")
    evaluator_image: str = Field(description="The image the evaluator Job runs.")


class MetricResult(StatusModel):
    """One row of the gate's table."""

    name: str = Field(description="The metric.")
    greater_is_better: bool = Field(description="The metric's better direction.")
    candidate: float | None = Field(default=None, description="The candidate's score.")
    champion: float | None = Field(default=None, description="The champion's score.")
    threshold: float | None = Field(default=None, description="The absolute bar.")
    min_improvement: float | None = Field(default=None, description="The bar over the champion.")
    passed: bool = Field(description="Whether the candidate cleared both bars.")
    reason: str = Field(description="Why it passed or failed.")


class RetrainingRunStatus(StatusModel):
    """Where the run is, and what it found."""

    phase: RunPhase | None = Field(default=None, description="The run's phase.")
    phase_since: datetime | None = Field(default=None, description="When the phase began.")
    completed_at: datetime | None = Field(default=None, description="When the run finished.")
    champion_version: str | None = Field(
        default=None, description="The version the alias pointed at when the run started."
    )
    candidate_version: str | None = Field(
        default=None, description="The version the trainer registered."
    )
    holdout_sha256: str | None = Field(
        default=None, description="SHA-256 of the holdout both models were scored on."
    )
    holdout_rows: int | None = Field(default=None, description="Rows of the holdout.")
    metrics: list[MetricResult] | None = Field(default=None, description="The gate's table.")
    decision: str | None = Field(default=None, description="The gate's decision, for humans.")
    reason: str | None = Field(default=None, description="CamelCase reason of the phase.")
    message: str | None = Field(default=None, description="What happened, for humans.")


class _Resource(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    api_version: str = f"{GROUP}/{VERSION}"
    metadata: ObjectMeta


class RetrainingPolicy(_Resource):
    """A RetrainingPolicy as read from the apiserver."""

    kind: str = POLICY_KIND
    spec: RetrainingPolicySpec
    status: RetrainingPolicyStatus = Field(default_factory=lambda: RetrainingPolicyStatus())

    @field_validator("metadata")
    @classmethod
    def _name(cls, metadata: ObjectMeta) -> ObjectMeta:
        POLICY_NAME_RULE.require(
            len(metadata.name) <= MAX_POLICY_NAME_LENGTH
            and cel_matches(NAME_PATTERN, metadata.name)
        )
        return metadata


class RetrainingRun(_Resource):
    """A RetrainingRun as read from the apiserver."""

    kind: str = RUN_KIND
    spec: RetrainingRunSpec
    status: RetrainingRunStatus = Field(default_factory=lambda: RetrainingRunStatus())
