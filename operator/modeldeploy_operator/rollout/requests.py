"""The request contract: one-shot requests from `kubectl modeldeploy promote|abort|pause|resume`.

The plugin writes, the operator reads, both from this module (the annotation names are in
`modeldeploy_serving.contract`, with everything else the components agree on). A request never
touches `spec` (a GitOps tool that owns the spec would revert it, or report drift); it
merge-patches three annotations:

    modeldeploy.dev/request: promote | abort | pause | resume
    modeldeploy.dev/request-id: <fresh uuid4>
    modeldeploy.dev/request-canary: <status.canaryVersion when the request was made>

The operator acts on a request id once and records it in `status.lastRequestId`; a request made
for a canary that is no longer the one rolling out is recorded without acting, so it never leaks
into a later rollout. A `pause` holds until a `resume` and is remembered in
`status.pauseConditions` (reason PausedByRequest); `spec.rollout.paused` stays the declarative
pause, which `resume` cannot lift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from modeldeploy_serving.contract import (
    REQUEST_ANNOTATION,
    REQUEST_CANARY_ANNOTATION,
    REQUEST_ID_ANNOTATION,
)

from modeldeploy_operator.api import ModelDeployment, ModelDeploymentStatus, PauseReason

Request = Literal["promote", "abort", "pause", "resume"]
REQUEST_VERBS: Final[tuple[Request, ...]] = get_args(Request)


def request_patch(verb: Request, request_id: str, canary_version: str) -> dict[str, Any]:
    """The merge patch a request sends: annotations only, never spec."""
    return {
        "metadata": {
            "annotations": {
                REQUEST_ANNOTATION: verb,
                REQUEST_ID_ANNOTATION: request_id,
                REQUEST_CANARY_ANNOTATION: canary_version,
            }
        }
    }


@dataclass(frozen=True)
class PendingRequest:
    request_id: str
    verb: Request
    stale: bool  # made for another canary (or none): record it, do nothing

    @property
    def actionable(self) -> tuple[str, Request] | None:
        return None if self.stale else (self.request_id, self.verb)


def pending_request(body: dict[str, Any], md: ModelDeployment) -> PendingRequest | None:
    """The request the annotations carry that the operator has not acted on yet, if any."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    verb = annotations.get(REQUEST_ANNOTATION)
    request_id = annotations.get(REQUEST_ID_ANNOTATION)
    if not request_id or request_id == md.status.last_request_id:
        return None
    canary = annotations.get(REQUEST_CANARY_ANNOTATION)
    stale = verb not in REQUEST_VERBS or md.status.canary_version is None
    if canary is not None and canary != md.status.canary_version:
        stale = True
    return PendingRequest(request_id, cast(Request, verb), stale)


def paused_by_request(status: ModelDeploymentStatus) -> bool:
    """Whether a `pause` request holds the rollout. Read from `status.pauseConditions`; a status
    written before that field existed has only the Progressing condition's reason to tell."""
    if status.pause_conditions is not None:
        return any(p.reason == PauseReason.REQUEST for p in status.pause_conditions)
    for cond in status.conditions:
        if cond.type == "Progressing":
            return cond.reason == PauseReason.REQUEST
    return False
