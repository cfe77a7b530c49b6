"""The run machine: each phase's transitions, what it applies, and that trouble holds."""

from __future__ import annotations

import json

import pytest
from modeldeploy_operator.api import CredentialsSecretRef
from modeldeploy_operator.api.retraining import RetrainingRun, RunPhase
from modeldeploy_operator.retraining.jobs import (
    LABEL_RUN,
    evaluation_job_name,
    training_job_name,
)
from modeldeploy_operator.retraining.machine import (
    JobObservation,
    JobState,
    RegistryLookup,
    RunObservation,
    TargetObservation,
    plan_run,
)
from modeldeploy_operator.retraining.policy import TriggerReading, plan_policy

from tests.unit.operator.retraining.retraining_models import (
    EVALUATOR_IMAGE,
    RUN_UID,
    T0,
    evaluation_json,
    policy,
    run,
    seconds,
    target,
)

NOW = T0 + seconds(30)
GOOD = evaluation_json({"accuracy": 0.95, "logLoss": 0.2}, {"accuracy": 0.9, "logLoss": 0.3})
SHUFFLED = evaluation_json({"accuracy": 0.34, "logLoss": 1.1}, {"accuracy": 0.9, "logLoss": 0.3})


def evaluating() -> RetrainingRun:
    return run(phase=RunPhase.EVALUATING, championVersion="1", candidateVersion="2")


def test_a_new_run_pins_the_champion_and_starts_the_users_trainer() -> None:
    plan = plan_run(run(), RunObservation(champion=RegistryLookup("1")), NOW)
    assert plan.status.phase == RunPhase.TRAINING
    assert plan.status.champion_version == "1"
    [job] = plan.jobs
    assert job["metadata"]["name"] == training_job_name("iris-drift-1767268800")
    assert job["metadata"]["ownerReferences"][0]["uid"] == RUN_UID
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    assert job["spec"]["template"]["metadata"]["labels"][LABEL_RUN] == "iris-drift-1767268800"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    # The operator names the run, not the user's template.
    assert env["MODELDEPLOY_RETRAINING_RUN"] == "iris-drift-1767268800"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow:5000"
    assert env["MODELDEPLOY_REGISTERED_MODEL"] == "iris"
    assert [e.reason for e in plan.events] == ["Training"]


def test_no_champion_fails_closed() -> None:
    plan = plan_run(run(), RunObservation(champion=RegistryLookup(None)), NOW)
    assert plan.status.phase == RunPhase.FAILED and plan.status.reason == "NoChampion"
    assert plan.jobs == []


def test_an_unreachable_registry_holds_the_new_run() -> None:
    plan = plan_run(run(), RunObservation(champion=RegistryLookup(error="HTTP 503")), NOW)
    assert plan.status.phase is None and plan.status.reason == "RegistryUnreachable"
    assert plan.jobs == [] and plan.result is None


def test_training_waits_for_the_job() -> None:
    training = run(phase=RunPhase.TRAINING, championVersion="1")
    running = RunObservation(training=JobObservation(JobState.RUNNING))
    assert plan_run(training, running, NOW).status == training.status
    assert plan_run(training, running, NOW).jobs == []
    # A Job deleted by hand is made again.
    [job] = plan_run(training, RunObservation(), NOW).jobs
    assert job["metadata"]["name"].endswith("-train")


def test_a_crashed_trainer_fails_the_run() -> None:
    training = run(phase=RunPhase.TRAINING, championVersion="1")
    seen = RunObservation(training=JobObservation(JobState.FAILED, "BackoffLimitExceeded"))
    plan = plan_run(training, seen, NOW)
    assert plan.status.phase == RunPhase.FAILED and plan.status.reason == "TrainingFailed"
    assert plan.result == RunPhase.FAILED
    assert plan.events[0].warning


def test_a_trainer_that_registered_nothing_fails_the_run() -> None:
    training = run(phase=RunPhase.TRAINING, championVersion="1")
    seen = RunObservation(
        training=JobObservation(JobState.SUCCEEDED), candidate=RegistryLookup(None)
    )
    assert plan_run(training, seen, NOW).status.reason == "NoCandidate"


def test_a_registered_candidate_is_evaluated_by_the_operators_job() -> None:
    training = run(phase=RunPhase.TRAINING, championVersion="1")
    seen = RunObservation(
        training=JobObservation(JobState.SUCCEEDED), candidate=RegistryLookup("2")
    )
    plan = plan_run(training, seen, NOW)
    assert plan.status.phase == RunPhase.EVALUATING
    assert plan.status.candidate_version == "2"
    [job] = plan.jobs
    assert job["metadata"]["name"] == evaluation_job_name("iris-drift-1767268800")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == EVALUATOR_IMAGE
    args = container["args"]
    assert args[0] == "evaluate"
    assert args[args.index("--candidate") + 1] == "2"
    assert args[args.index("--champion") + 1] == "1"
    assert args[args.index("--metrics") + 1] == "accuracy,logLoss"
    assert container["terminationMessagePath"] == "/dev/termination-log"


def test_a_good_candidate_moves_the_alias() -> None:
    seen = RunObservation(evaluation=JobObservation(JobState.SUCCEEDED, output=GOOD))
    plan = plan_run(evaluating(), seen, NOW)
    assert plan.status.phase == RunPhase.PROMOTING
    assert plan.move_alias_to == "2"
    assert plan.status.metrics is not None and all(row.passed for row in plan.status.metrics)
    assert plan.status.holdout_rows == 45


def test_a_worse_candidate_is_gate_failed_and_the_alias_stays() -> None:
    seen = RunObservation(evaluation=JobObservation(JobState.SUCCEEDED, output=SHUFFLED))
    plan = plan_run(evaluating(), seen, NOW)
    assert plan.status.phase == RunPhase.GATE_FAILED
    assert plan.move_alias_to is None
    assert plan.status.decision is not None and "rejected" in plan.status.decision
    assert plan.result == RunPhase.GATE_FAILED


def test_an_evaluation_without_a_metric_fails_closed() -> None:
    output = evaluation_json({"accuracy": 0.99}, {"accuracy": 0.9, "logLoss": 0.3})
    seen = RunObservation(evaluation=JobObservation(JobState.SUCCEEDED, output=output))
    plan = plan_run(evaluating(), seen, NOW)
    assert plan.status.phase == RunPhase.GATE_FAILED and plan.move_alias_to is None


@pytest.mark.parametrize("scored", [{"candidate": "3"}, {"champion": "7"}])
def test_scores_of_other_versions_than_asked_fail_the_run_without_promoting(
    scored: dict[str, str],
) -> None:
    """The evaluator image is the user's to choose: its result must be for the very versions the
    operator asked it to score, or nothing is judged."""
    document = json.loads(GOOD)
    for role, version in scored.items():
        document[role]["version"] = version
    seen = RunObservation(
        evaluation=JobObservation(JobState.SUCCEEDED, output=json.dumps(document))
    )
    plan = plan_run(evaluating(), seen, NOW)
    assert plan.status.phase == RunPhase.FAILED and plan.status.reason == "EvaluationFailed"
    assert plan.move_alias_to is None


def test_a_crashed_evaluator_fails_the_run_without_promoting() -> None:
    seen = RunObservation(
        evaluation=JobObservation(JobState.FAILED, "DeadlineExceeded", output="Traceback ...")
    )
    plan = plan_run(evaluating(), seen, NOW)
    assert plan.status.phase == RunPhase.FAILED and plan.status.reason == "EvaluationFailed"
    assert plan.move_alias_to is None


def promoting() -> RetrainingRun:
    return run(
        phase=RunPhase.PROMOTING, championVersion="1", candidateVersion="2",
        phaseSince=T0.isoformat(),
    )  # fmt: skip


def test_promoting_waits_for_the_canary() -> None:
    seen = RunObservation(target=TargetObservation(stable_version="1", canary_version="2"))
    plan = plan_run(promoting(), seen, NOW)
    assert plan.status.phase == RunPhase.PROMOTING and plan.events == []


def test_the_candidate_stable_is_promoted() -> None:
    seen = RunObservation(target=TargetObservation(stable_version="2"))
    plan = plan_run(promoting(), seen, NOW)
    assert plan.status.phase == RunPhase.PROMOTED and plan.result == RunPhase.PROMOTED
    assert plan.status.completed_at == NOW


def test_the_candidate_rejected_by_the_canary_is_rolled_back() -> None:
    seen = RunObservation(
        target=TargetObservation(stable_version="1", rejected_versions=frozenset({"2"}))
    )
    plan = plan_run(promoting(), seen, NOW)
    assert plan.status.phase == RunPhase.ROLLED_BACK


def test_promotion_times_out() -> None:
    seen = RunObservation(target=TargetObservation(stable_version="1", canary_version="2"))
    late = T0 + seconds(30 * 60 + 1)
    plan = plan_run(promoting(), seen, late)
    assert plan.status.phase == RunPhase.FAILED and plan.status.reason == "PromotionTimedOut"


def test_a_finished_run_does_nothing() -> None:
    done = run(phase=RunPhase.PROMOTED, championVersion="1", candidateVersion="2")
    plan = plan_run(done, RunObservation(), NOW)
    assert plan.status == done.status and plan.jobs == [] and plan.events == []


def test_the_jobs_get_the_registry_credentials_by_reference_only() -> None:
    """Trainer and evaluator talk to MLflow: with the target's credentials Secret, they get its
    keys as MLflow's variables from the Secret (never a value), replacing the user's own."""
    body = run().model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["registry"]["credentialsSecretRef"] = {"name": "mlflow-auth"}
    container = body["spec"]["training"]["jobTemplate"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "MLFLOW_TRACKING_PASSWORD", "value": "typed-in-the-template"}]
    with_secret = RetrainingRun.model_validate(body)
    [trainer] = plan_run(with_secret, RunObservation(champion=RegistryLookup("1")), NOW).jobs
    training = with_secret.model_copy(
        update={
            "status": with_secret.status.model_copy(
                update={"phase": RunPhase.TRAINING, "champion_version": "1"}
            )
        }
    )
    seen = RunObservation(
        training=JobObservation(JobState.SUCCEEDED), candidate=RegistryLookup("2")
    )
    [evaluator] = plan_run(training, seen, NOW).jobs
    expected = {
        env: {"secretKeyRef": {"name": "mlflow-auth", "key": key, "optional": True}}
        for env, key in (
            ("MLFLOW_TRACKING_USERNAME", "username"),
            ("MLFLOW_TRACKING_PASSWORD", "password"),
            ("MLFLOW_TRACKING_TOKEN", "token"),
        )
    }
    for job in (trainer, evaluator):
        [container] = job["spec"]["template"]["spec"]["containers"]
        from_secret = {e["name"]: e.get("valueFrom") for e in container["env"]}
        assert {k: v for k, v in from_secret.items() if k in expected} == expected
        assert "typed-in-the-template" not in json.dumps(job)
    # Without a Secret the evaluator has no environment at all, as before.
    plain = run(phase=RunPhase.TRAINING, championVersion="1")
    [evaluator] = plan_run(plain, seen, NOW).jobs
    assert "env" not in evaluator["spec"]["template"]["spec"]["containers"][0]


def test_a_run_copies_the_targets_credentials_secret() -> None:
    md = target()
    source = md.spec.model.source
    assert source is not None
    mlflow = source.mlflow.model_copy(
        update={"credentials_secret_ref": CredentialsSecretRef(name="mlflow-auth")}
    )
    model = md.spec.model.model_copy(
        update={"source": source.model_copy(update={"mlflow": mlflow})}
    )
    md = md.model_copy(update={"spec": md.spec.model_copy(update={"model": model})})
    held = policy(status={"heldSince": (T0 - seconds(3600)).isoformat()})
    plan = plan_policy(
        held, [], md, TriggerReading("q", 0.5), NOW, EVALUATOR_IMAGE, serves_alerts=True
    )
    assert plan.new_run is not None
    assert plan.new_run.spec.registry.credentials_secret_ref == CredentialsSecretRef(
        name="mlflow-auth"
    )
