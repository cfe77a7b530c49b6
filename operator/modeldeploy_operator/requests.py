"""One-shot user requests from `kubectl modeldeploy promote|abort|pause|resume`.

The plugin writes two annotations instead of touching `spec`, so a GitOps tool that owns the
spec never fights it: `modeldeploy.dev/request` (the verb) and `modeldeploy.dev/request-id` (a
fresh id). The operator acts on an id once and records it in `status.lastRequestId`.
"""

from __future__ import annotations

from typing import Any, Final, cast, get_args

from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.planning import Request

REQUEST_ANNOTATION: Final = "modeldeploy.dev/request"
REQUEST_ID_ANNOTATION: Final = "modeldeploy.dev/request-id"
VERBS: Final = get_args(Request)


def pending_request(body: dict[str, Any], md: ModelDeployment) -> tuple[str, Request] | None:
    annotations = body.get("metadata", {}).get("annotations") or {}
    verb = annotations.get(REQUEST_ANNOTATION)
    request_id = annotations.get(REQUEST_ID_ANNOTATION)
    if not verb or not request_id or request_id == md.status.last_request_id:
        return None
    if verb not in VERBS:
        return None
    return request_id, cast(Request, verb)
