"""status.problem_status: what a pass that could not make its children so reports."""

from __future__ import annotations

from typing import Any

from modeldeploy_operator.status import problem_status

READY: dict[str, Any] = {
    "phase": "Ready",
    "stableVersion": "1",
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "2/2",
         "observedGeneration": 3, "lastTransitionTime": "2026-11-28T12:00:00Z"},
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "none",
         "observedGeneration": 3, "lastTransitionTime": "2026-11-28T12:00:00Z"},
    ],
}  # fmt: skip
NOW = 1_796_000_000.0
CONFLICT = "Service iris already exists and has no controller"


def test_degraded_replaces_only_its_own_condition_and_the_phase() -> None:
    change = problem_status(4, NOW, READY, "ChildConflict", CONFLICT)
    assert set(change.status) == {"phase", "conditions"}  # nothing of the plan
    assert change.status["phase"] == "Degraded"
    ready, degraded = change.status["conditions"]
    assert ready == READY["conditions"][0]
    assert degraded["status"] == "True" and degraded["reason"] == "ChildConflict"
    assert degraded["message"] == CONFLICT and degraded["observedGeneration"] == 4
    assert degraded["lastTransitionTime"] != "2026-11-28T12:00:00Z"
    [event] = change.events
    assert (event.reason, event.warning) == ("ChildConflict", True)
    assert CONFLICT in event.message


def test_the_same_problem_again_changes_nothing_and_posts_nothing() -> None:
    first = problem_status(4, NOW, READY, "ChildConflict", CONFLICT)
    held = {**READY, **first.status}
    again = problem_status(4, NOW + 60, held, "ChildConflict", CONFLICT)
    assert again.events == []
    assert all(held[key] == value for key, value in again.status.items())


def test_another_problem_is_announced_but_degraded_keeps_its_transition_time() -> None:
    first = problem_status(4, NOW, READY, "ChildConflict", CONFLICT)
    held = {**READY, **first.status}
    other = problem_status(4, NOW + 60, held, "ApplyFailed", "Service iris: 422 Invalid: ...")
    [event] = other.events
    assert event.reason == "ApplyFailed"
    before = first.status["conditions"][-1]["lastTransitionTime"]
    assert other.status["conditions"][-1]["lastTransitionTime"] == before
