from __future__ import annotations

from typing import Any

from modeldeploy_operator.health import deployment_health, pod_problems


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris-v1", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, **status},
    }


def pod(
    name: str, waiting: str = "", message: str = "", exit_code: int | None = None
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": message}}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
    return {
        "metadata": {"name": name},
        "status": {"containerStatuses": [{"name": "server", "state": state}]},
    }


def test_all_replicas_ready_is_rolled_out() -> None:
    h = deployment_health(
        deployment(readyReplicas=2, availableReplicas=2, updatedReplicas=2, replicas=2)
    )
    assert h.rolled_out and h.serving and not h.stuck


def test_an_old_generation_is_not_rolled_out() -> None:
    body = deployment(readyReplicas=2, availableReplicas=2, updatedReplicas=2)
    body["status"]["observedGeneration"] = 1
    assert not deployment_health(body).rolled_out


def test_progress_deadline_exceeded_is_stuck() -> None:
    body = deployment(
        conditions=[
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ]
    )
    h = deployment_health(body)
    assert h.stuck and h.progress_deadline_exceeded
    assert "progress deadline exceeded" in h.explain()


def test_crash_looping_pods_are_problems_even_when_counted_available() -> None:
    body = deployment(readyReplicas=2, availableReplicas=2, updatedReplicas=2)
    h = deployment_health(body, [pod("a", "CrashLoopBackOff", "back-off 5m0s"), pod("b")])
    assert h.stuck
    assert h.problems[0].reason == "CrashLoopBackOff"
    assert "pod a container server: CrashLoopBackOff (back-off 5m0s)" in h.explain()


def test_failed_exit_codes_and_pull_errors_are_reported_in_order() -> None:
    problems = pod_problems(
        [pod("b", "ErrImagePull"), pod("a", exit_code=2), pod("c", "ContainerCreating")]
    )
    assert [(p.pod, p.reason) for p in problems] == [("a", "Error"), ("b", "ErrImagePull")]


def test_terminating_pods_are_ignored() -> None:
    p = pod("a", "CrashLoopBackOff")
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pod_problems([p]) == ()
