"""A RetrainingRun's state machine. Pure: (run, what was observed, clock) → a `RunPlan`.

  (new)       — the champion is the version the followed alias points at now → Training;
                no alias (nothing to compare with) → Failed: the gate fails closed;
  Training    — the user's Job trains and registers a version tagged with the run's name.
                Job succeeded and the tagged version found → Evaluating; Job failed, or
                succeeded without registering a tagged version → Failed;
  Evaluating  — the operator's evaluator Job scores candidate and champion on one holdout.
                The gate passes → Promoting (the plan asks to move the alias: the apply step
                moves it, then writes the phase); it fails, or any score is missing → GateFailed;
                the evaluator crashed without a result → Failed;
  Promoting   — the target's registry-driven canary is the online gate: the candidate stable
                → Promoted; the candidate rejected → RolledBack; neither within
                promotionTimeout → Failed.

Everything a restarted operator needs is in the run's status (phase, versions, phaseSince).
Registry or Prometheus trouble is never a verdict: the run holds and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modeldeploy_operator.api import parse_duration
from modeldeploy_operator.api.retraining import RetrainingRun, RetrainingRunStatus, RunPhase
from modeldeploy_operator.retraining.gate import (
    EvaluationUnreadable,
    judge,
    parse_evaluation,
)
from modeldeploy_operator.retraining.jobs import evaluation_job, training_job
from modeldeploy_operator.rollout.plan import Event


class JobState(StrEnum):
    ABSENT = "Absent"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobObservation:
    state: JobState = JobState.ABSENT
    message: str = ""
    # The evaluator's termination message (its JSON result), when its pod has ended.
    output: str | None = None


@dataclass(frozen=True)
class RegistryLookup:
    """A version the registry named (the alias's, or the one tagged with the run), `None` when
    it answered that there is none; `error` when it did not answer."""

    version: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TargetObservation:
    """The target ModelDeployment's rollout, as its status says."""

    stable_version: str | None = None
    canary_version: str | None = None
    rejected_versions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunObservation:
    champion: RegistryLookup = RegistryLookup()
    candidate: RegistryLookup = RegistryLookup()
    training: JobObservation = JobObservation()
    evaluation: JobObservation = JobObservation()
    target: TargetObservation = TargetObservation()


@dataclass(frozen=True)
class RunPlan:
    status: RetrainingRunStatus
    jobs: list[dict[str, Any]] = field(default_factory=list)
    # Move the followed alias to this version before writing the status (Evaluating → Promoting).
    move_alias_to: str | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def result(self) -> RunPhase | None:
        """The phase the run finished in with this plan (None while it goes on)."""
        phase = self.status.phase
        return phase if phase is not None and phase.finished else None


def _enter(
    status: RetrainingRunStatus, phase: RunPhase, now: datetime, reason: str, message: str
) -> RetrainingRunStatus:
    finished = phase.finished
    return status.model_copy(
        update={
            "phase": phase,
            "phase_since": now,
            "completed_at": now if finished else None,
            "reason": reason,
            "message": message,
        }
    )


def _holding(status: RetrainingRunStatus, reason: str, message: str) -> RetrainingRunStatus:
    return status.model_copy(update={"reason": reason, "message": message})


def plan_run(run: RetrainingRun, seen: RunObservation, now: datetime) -> RunPlan:
    status = run.status
    match status.phase:
        case None:
            return _start(run, seen, now)
        case RunPhase.TRAINING:
            return _training(run, seen, now)
        case RunPhase.EVALUATING:
            return _evaluating(run, seen, now)
        case RunPhase.PROMOTING:
            return _promoting(run, seen, now)
        case _:
            return RunPlan(status)


def _start(run: RetrainingRun, seen: RunObservation, now: datetime) -> RunPlan:
    champion = seen.champion
    alias = f"{run.spec.registry.registered_model}@{run.spec.registry.alias}"
    if champion.error is not None:
        return RunPlan(
            _holding(run.status, "RegistryUnreachable", f"cannot read {alias}: {champion.error}")
        )
    if champion.version is None:
        message = f"{alias} points at no version: there is no champion to evaluate against"
        status = _enter(run.status, RunPhase.FAILED, now, "NoChampion", message)
        return RunPlan(status, events=[Event("NoChampion", message, warning=True)])
    status = _enter(
        run.status, RunPhase.TRAINING, now, "Training",
        f"training a challenger to version {champion.version} ({alias})",
    ).model_copy(update={"champion_version": champion.version})  # fmt: skip
    message = f"started: {run.spec.trigger.describe()}; champion {alias} is version "
    message += champion.version
    return RunPlan(status, jobs=[training_job(run)], events=[Event("Training", message)])


def _training(run: RetrainingRun, seen: RunObservation, now: datetime) -> RunPlan:
    job = seen.training
    if job.state == JobState.ABSENT:
        return RunPlan(run.status, jobs=[training_job(run)])
    if job.state == JobState.RUNNING:
        return RunPlan(run.status)
    if job.state == JobState.FAILED:
        message = f"the training Job failed: {job.message}"
        status = _enter(run.status, RunPhase.FAILED, now, "TrainingFailed", message)
        return RunPlan(status, events=[Event("TrainingFailed", message, warning=True)])
    candidate = seen.candidate
    if candidate.error is not None:
        return RunPlan(_holding(run.status, "RegistryUnreachable", candidate.error))
    if candidate.version is None:
        message = (
            "the training Job succeeded but registered no version of "
            f"{run.spec.registry.registered_model} tagged with this run"
        )
        status = _enter(run.status, RunPhase.FAILED, now, "NoCandidate", message)
        return RunPlan(status, events=[Event("NoCandidate", message, warning=True)])
    champion = run.status.champion_version
    assert champion is not None, "a run in Training has its champion"
    message = f"evaluating candidate version {candidate.version} against champion {champion}"
    status = _enter(run.status, RunPhase.EVALUATING, now, "Evaluating", message)
    status = status.model_copy(update={"candidate_version": candidate.version})
    return RunPlan(
        status,
        jobs=[evaluation_job(run, candidate.version, champion)],
        events=[Event("Evaluating", message)],
    )


def _evaluating(run: RetrainingRun, seen: RunObservation, now: datetime) -> RunPlan:
    candidate, champion = run.status.candidate_version, run.status.champion_version
    assert candidate is not None and champion is not None, "a run in Evaluating has both"
    job = seen.evaluation
    if job.state == JobState.ABSENT:
        return RunPlan(run.status, jobs=[evaluation_job(run, candidate, champion)])
    if job.state == JobState.RUNNING:
        return RunPlan(run.status)
    try:
        if job.output is None:
            raise EvaluationUnreadable("the evaluator left no result")
        evaluation = parse_evaluation(job.output)
        asked = (evaluation.candidate.version, evaluation.champion.version)
        if asked != (candidate, champion):
            # The evaluator image may be the user's: judge only the versions it was asked for.
            raise EvaluationUnreadable(
                f"it scored versions {asked[0]} and {asked[1]}, not candidate {candidate} "
                f"and champion {champion}"
            )
    except EvaluationUnreadable as err:
        # Nothing to judge: not a verdict on the candidate, and no promotion either.
        message = f"the evaluator Job {job.state.value.lower()} without a result: {err}"
        if job.message:
            message += f" ({job.message})"
        status = _enter(run.status, RunPhase.FAILED, now, "EvaluationFailed", message)
        return RunPlan(status, events=[Event("EvaluationFailed", message, warning=True)])
    verdict = judge(run.spec.evaluation, evaluation)
    scored = run.status.model_copy(
        update={
            "metrics": verdict.rows,
            "decision": verdict.decision,
            "holdout_sha256": evaluation.holdout_sha256,
            "holdout_rows": evaluation.rows,
        }
    )
    if not verdict.passed:
        status = _enter(scored, RunPhase.GATE_FAILED, now, "GateFailed", verdict.decision)
        return RunPlan(status, events=[Event("GateFailed", verdict.decision, warning=True)])
    alias = run.spec.registry.alias
    message = f"{verdict.decision}; @{alias} moved to it, the target's canary decides"
    status = _enter(scored, RunPhase.PROMOTING, now, "Promoting", message)
    return RunPlan(status, move_alias_to=candidate, events=[Event("Promoting", message)])


def _promoting(run: RetrainingRun, seen: RunObservation, now: datetime) -> RunPlan:
    candidate = run.status.candidate_version
    target = seen.target
    if candidate in target.rejected_versions:
        message = f"the target's canary rolled version {candidate} back"
        status = _enter(run.status, RunPhase.ROLLED_BACK, now, "RolledBack", message)
        return RunPlan(status, events=[Event("RolledBack", message, warning=True)])
    if target.stable_version == candidate and target.canary_version is None:
        message = f"version {candidate} serves all of {run.spec.target_ref.name}'s traffic"
        status = _enter(run.status, RunPhase.PROMOTED, now, "Promoted", message)
        return RunPlan(status, events=[Event("Promoted", message)])
    since = run.status.phase_since or now
    timeout = parse_duration(run.spec.evaluation.promotion_timeout)
    if (now - since).total_seconds() > timeout:
        message = (
            f"version {candidate} was neither promoted nor rolled back within "
            f"{run.spec.evaluation.promotion_timeout} (stable {target.stable_version}, canary "
            f"{target.canary_version})"
        )
        status = _enter(run.status, RunPhase.FAILED, now, "PromotionTimedOut", message)
        return RunPlan(status, events=[Event("PromotionTimedOut", message, warning=True)])
    return RunPlan(run.status)
