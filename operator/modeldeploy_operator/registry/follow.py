"""Following a registry: what to pin, what to remember, what to say. Pure.

Before the rollout machine runs, `choose_pin` turns the registry's latest answer into the model
the pods should run, which `pinned_deployment` writes into an in-memory copy of the
ModelDeployment (the spec stored in the cluster is never written): the resolved version, the
model file's URL and its sha256, never the alias, so a pod restarted mid-canary loads the same
bytes. The machine then rolls the pinned version out exactly as if spec.model.version had
changed.

- Registry down, the alias deleted, or its credentials missing or refused: the last resolved
  version stays pinned (nothing is torn down, a canary in progress continues); the conditions
  say why.
- Nothing resolved yet (registry down at creation): no pin; the reconciler creates nothing.
- A version whose rollout was rolled back goes to status.rejected (`after_plan`); while the
  reference still resolves to it (same version and digest), the stable version stays pinned
  instead, so it is not retried. Moving the alias on, or changing spec.model.source.retry,
  retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from modeldeploy_operator.api import (
    ModelDeployment,
    ModelSource,
    PinnedModel,
    RejectedVersion,
    ResolvedVersion,
)
from modeldeploy_operator.registry.credentials import serving_env
from modeldeploy_operator.registry.mlflow import ModelFile, RegisteredVersion
from modeldeploy_operator.rollout.plan import Event, Plan
from modeldeploy_operator.status import Condition

SOURCE_REACHABLE: Final = "SourceReachable"
IN_SYNC: Final = "InSyncWithRegistry"
# Reasons of the conditions (and of their Events).
REACHABLE: Final = "Resolved"
UNREACHABLE: Final = "RegistryUnreachable"
NOT_FOUND: Final = "ReferenceNotFound"
UNUSABLE: Final = "ArtifactUnusable"
IN_SYNC_REASON: Final = "InSync"
ROLLING_OUT: Final = "RollingOut"
REJECTED: Final = "VersionRejected"
NOTHING_RESOLVED: Final = "NothingResolved"
# status.rejected keeps this many entries, the newest.
MAX_REJECTED: Final = 20
# The status keys following a registry writes; null (removed) once the spec names a version.
NOT_FOLLOWING: Final[dict[str, Any]] = {"resolved": None, "rejected": None}

ProblemKind = Literal[
    "RegistryUnreachable",
    "ReferenceNotFound",
    "ArtifactUnusable",
    "CredentialsUnavailable",
    "AccessDenied",
]


@dataclass(frozen=True)
class Resolved:
    """The registry's answer: the version the reference names and its pinned model file."""

    registered: RegisteredVersion
    model_file: ModelFile


@dataclass(frozen=True)
class Problem:
    """Why the registry gave no usable answer."""

    kind: ProblemKind
    message: str


Answer = Resolved | Problem


@dataclass(frozen=True)
class Following:
    """What a pass takes from the registry: the pin for the machine (None: nothing to roll out
    or serve yet), status.resolved, and the answer's problem, if any."""

    source: ModelSource
    pin: PinnedModel | None
    resolved: ResolvedVersion | None
    problem: Problem | None
    rejected: list[RejectedVersion] = field(default_factory=list)  # the ones in force


def active_rejections(md: ModelDeployment, source: ModelSource) -> list[RejectedVersion]:
    """The rejections that still hold: made under the current spec.model.source.retry."""
    return [r for r in md.status.rejected or [] if r.retry == source.retry]


def _rejects(rejected: list[RejectedVersion], resolved: ResolvedVersion) -> bool:
    return any(r.version == resolved.version and r.digest == resolved.sha256 for r in rejected)


def choose_pin(md: ModelDeployment, answer: Answer, now: datetime) -> Following:
    """The model to roll out and status.resolved after the registry's `answer`."""
    source = md.spec.model.source
    assert source is not None, "choose_pin is for a ModelDeployment that follows a source"
    previous = md.status.resolved
    resolved = previous
    if isinstance(answer, Resolved):
        same = (
            previous is not None
            and previous.version == answer.registered.version
            and previous.sha256 == answer.model_file.sha256
        )
        resolved = ResolvedVersion(
            alias=source.mlflow.follow.alias,
            version=answer.registered.version,
            run_id=answer.registered.run_id,
            artifact_uri=answer.registered.artifact_uri,
            model_file_uri=answer.model_file.uri,
            sha256=answer.model_file.sha256,
            resolved_at=previous.resolved_at if same and previous is not None else now,
        )
    problem = answer if isinstance(answer, Problem) else None
    rejected = active_rejections(md, source)
    if resolved is None:
        pin = None
    elif _rejects(rejected, resolved):
        stable = md.status.stable_serving
        pin = stable.model if stable is not None else None
    else:
        pin = PinnedModel(
            format=md.spec.model.format,
            version=resolved.version,
            storage_uri=resolved.model_file_uri,
            sha256=resolved.sha256,
        )
    return Following(source, pin, resolved, problem, rejected)


def pinned_deployment(md: ModelDeployment, pin: PinnedModel) -> ModelDeployment:
    """The ModelDeployment as the rollout machine and the builders should read it: the pinned
    model in place of the source. In memory only. The machine's own memory of a rolled-back
    template (failedServingHash) is left out: status.rejected is the memory of a followed
    registry, and it knows about retries. With a credentials Secret, the pods' fetcher gets the
    tracking server's address and the Secret's keys (replacing the user's variables of the same
    names)."""
    source = md.spec.model.source
    assert source is not None, "only a ModelDeployment that follows a source is pinned"
    model = md.spec.model.model_copy(
        update={
            "version": pin.version,
            "storage_uri": pin.storage_uri,
            "sha256": pin.sha256,
            "source": None,
        }
    )
    spec = md.spec.model_copy(update={"model": model})
    added = serving_env(source.mlflow)
    if added:
        names = {var.name for var in added}
        env = [*(var for var in md.spec.server.env if var.name not in names), *added]
        spec = spec.model_copy(update={"server": md.spec.server.model_copy(update={"env": env})})
    status = md.status.model_copy(update={"failed_serving_hash": None})
    return md.model_copy(update={"spec": spec, "status": status})


@dataclass(frozen=True)
class RegistryReport:
    """The status fields and conditions that following a registry adds to a pass's status."""

    status: dict[str, Any]
    conditions: list[Condition]
    events: list[Event]
    # The version the reference points at while it is rejected (the rolled-back gauge's).
    rejected_version: str | None = None


def after_plan(
    md: ModelDeployment, following: Following, plan: Plan | None, now: datetime
) -> RegistryReport:
    """status.resolved, status.rejected (with a rollback of the pinned version recorded) and
    the two conditions, after the machine planned (`plan` None: nothing was pinned)."""
    resolved = following.resolved
    rejected = list(md.status.rejected or [])
    events: list[Event] = []
    pin = following.pin
    if (
        plan is not None
        and plan.failure is not None
        and pin is not None
        and resolved is not None
        and pin.version == resolved.version
        and plan.target.model.version == pin.version
        and not _rejects(following.rejected, resolved)
    ):
        rejection = RejectedVersion(
            version=resolved.version,
            digest=resolved.sha256,
            reason=f"{plan.failure.reason}: {plan.failure.message}",
            time=now,
            retry=following.source.retry,
        )
        rejected = [*rejected, rejection][-MAX_REJECTED:]
        events.append(
            Event(
                REJECTED,
                f"version {resolved.version} rejected: it is not retried while "
                f"{following.source.mlflow.describe()} points at it (change "
                "spec.model.source.retry to retry it)",
                warning=True,
            )
        )
        now_rejected = True
    else:
        now_rejected = resolved is not None and _rejects(following.rejected, resolved)
    return RegistryReport(
        status={
            "resolved": _dump(resolved),
            "rejected": [_dump(r) for r in rejected] or None,
        },
        conditions=[
            _reachable(following),
            _in_sync(following, plan, now_rejected=now_rejected),
        ],
        events=events,
        rejected_version=resolved.version if resolved is not None and now_rejected else None,
    )


def _dump(model: ResolvedVersion | RejectedVersion | None) -> dict[str, Any] | None:
    if model is None:
        return None
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _reachable(following: Following) -> Condition:
    reference = following.source.mlflow.describe()
    problem = following.problem
    kept = (
        f"; version {following.resolved.version} stays pinned"
        if following.resolved is not None
        else "; nothing is deployed until it resolves"
    )
    if problem is None:
        return Condition(SOURCE_REACHABLE, True, REACHABLE, f"{reference} resolved")
    if problem.kind == "ReferenceNotFound":
        # The registry answered: it is reachable, the reference is what is missing.
        return Condition(
            SOURCE_REACHABLE, True, NOT_FOUND, f"{reference} not found: {problem.message}{kept}"
        )
    return Condition(
        SOURCE_REACHABLE, False, problem.kind, f"{reference}: {problem.message}{kept}", True
    )


def _in_sync(following: Following, plan: Plan | None, *, now_rejected: bool) -> Condition:
    resolved = following.resolved
    reference = following.source.mlflow.describe()
    if resolved is None:
        return Condition(IN_SYNC, False, NOTHING_RESOLVED, f"{reference} has not resolved yet")
    serving = plan.stable.model.version if plan is not None and plan.stable else None
    if now_rejected:
        return Condition(
            IN_SYNC,
            False,
            REJECTED,
            f"{reference} points at version {resolved.version}, which was rolled back (see "
            f"status.rejected); version {serving} keeps serving; move the alias on or change "
            "spec.model.source.retry",
            True,
        )
    if following.problem is not None:
        # SourceReachable posts the problem's one Event.
        return Condition(
            IN_SYNC,
            False,
            following.problem.kind,
            f"cannot tell what {reference} points at now; version {resolved.version} (last "
            "resolved) stays pinned",
            True,
            announced=False,
        )
    if serving == resolved.version:
        return Condition(
            IN_SYNC, True, IN_SYNC_REASON, f"{reference} is version {resolved.version}, serving"
        )
    return Condition(
        IN_SYNC,
        False,
        ROLLING_OUT,
        f"{reference} is version {resolved.version}; rolling out from {serving or 'nothing'}",
    )
