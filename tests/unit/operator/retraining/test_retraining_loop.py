"""The loop's readings of the cluster: a Job's outcome and the evaluator's result; the default
trigger query."""

from __future__ import annotations

from typing import Any

from modeldeploy_operator.retraining.loop import default_query, job_observation
from modeldeploy_operator.retraining.machine import JobState


def job(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "r-eval", "namespace": "models"},
        "status": {
            "conditions": [
                {"type": kind, "status": "True", "reason": reason, "message": "m"}
                for kind, reason in conditions
            ]
        },
    }


def pod(message: str | None, container: str = "evaluate") -> dict[str, Any]:
    state = {"terminated": {"exitCode": 0, "message": message}} if message else {"running": {}}
    return {"status": {"containerStatuses": [{"name": container, "state": state}]}}


def test_a_missing_job_is_absent_and_one_without_an_outcome_runs() -> None:
    assert job_observation(None, []).state == JobState.ABSENT
    # Kubernetes 1.31+ says SuccessCriteriaMet before Complete: only Complete is the outcome.
    assert job_observation(job(("SuccessCriteriaMet", "x")), []).state == JobState.RUNNING


def test_complete_and_failed() -> None:
    done = job_observation(job(("SuccessCriteriaMet", ""), ("Complete", "")), [pod('{"a": 1}')])
    assert (done.state, done.output) == (JobState.SUCCEEDED, '{"a": 1}')
    failed = job_observation(job(("Failed", "DeadlineExceeded")), [pod(None)])
    assert (failed.state, failed.message, failed.output) == (
        JobState.FAILED, "DeadlineExceeded: m", None,
    )  # fmt: skip


def test_only_the_evaluator_containers_message_is_its_result() -> None:
    assert job_observation(job(("Complete", "")), [pod("{}", container="sidecar")]).output is None


def test_the_default_trigger_is_the_targets_largest_drift() -> None:
    assert default_query("models", "iris") == (
        'max(modeldeploy_feature_drift{namespace="models",model="iris"})'
    )
