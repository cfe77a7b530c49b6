"""One-shot user requests from `kubectl modeldeploy promote|abort|pause|resume`.

The plugin (see `plugin.py` for the annotation contract) writes annotations instead of touching
`spec`, so a GitOps tool that owns the spec never fights it. The operator acts on a request id
once and records it in `status.lastRequestId`; a request made for a canary that is no longer the
one rolling out is recorded without acting, so it never leaks into a later rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast, get_args

from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.planning import Request
from modeldeploy_operator.plugin import (
    REQUEST_ANNOTATION,
    REQUEST_CANARY_ANNOTATION,
    REQUEST_ID_ANNOTATION,
)

VERBS = get_args(Request)


@dataclass(frozen=True)
class PendingRequest:
    request_id: str
    verb: Request
    stale: bool  # made for another canary (or none): record it, do nothing

    @property
    def actionable(self) -> tuple[str, Request] | None:
        return None if self.stale else (self.request_id, self.verb)


def pending_request(body: dict[str, Any], md: ModelDeployment) -> PendingRequest | None:
    annotations = body.get("metadata", {}).get("annotations") or {}
    verb = annotations.get(REQUEST_ANNOTATION)
    request_id = annotations.get(REQUEST_ID_ANNOTATION)
    if not request_id or request_id == md.status.last_request_id:
        return None
    canary = annotations.get(REQUEST_CANARY_ANNOTATION)
    stale = verb not in VERBS or md.status.canary_version is None
    if canary is not None and canary != md.status.canary_version:
        stale = True
    return PendingRequest(request_id, cast(Request, verb), stale)
