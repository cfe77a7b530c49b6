"""The Jobs of a run: the user's trainer and the operator's evaluator. Pure builders.

Both are owned by the run (deleting the run deletes them) and carry the run's label; their pods
do not carry the managed-by label, so the ModelDeployment watches never see them. Neither Job
retries (backoffLimit 0): a failed attempt is the run's answer, and a retry is a new run. Both
talk to MLflow: with the target's credentials Secret, they get its keys as MLflow's variables
from the Secret (`secret_env`), never its values.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from modeldeploy_serving.contract import (
    ENV_MLFLOW_TRACKING_URI,
    ENV_REGISTERED_MODEL,
    ENV_RETRAINING_RUN,
    EVALUATION_RESULT_PATH,
)

from modeldeploy_operator import naming
from modeldeploy_operator.api import parse_duration
from modeldeploy_operator.api.retraining import RetrainingRun
from modeldeploy_operator.registry.credentials import secret_env_manifest

LABEL_RUN: Final = "modeldeploy.dev/retraining-run"
TRAIN_SUFFIX: Final = "-train"
EVALUATE_SUFFIX: Final = "-eval"
EVALUATOR_CONTAINER: Final = "evaluate"
SCRATCH_VOLUME: Final = "tmp"
SCRATCH_PATH: Final = "/tmp"


def training_job_name(run_name: str) -> str:
    return f"{run_name}{TRAIN_SUFFIX}"


def evaluation_job_name(run_name: str) -> str:
    return f"{run_name}{EVALUATE_SUFFIX}"


def run_owner_reference(run: RetrainingRun) -> dict[str, Any]:
    if not run.metadata.uid:
        raise ValueError(f"RetrainingRun {run.metadata.name} has no uid (not read from the API?)")
    return {
        "apiVersion": run.api_version,
        "kind": run.kind,
        "name": run.metadata.name,
        "uid": run.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _job(run: RetrainingRun, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    run_label = {LABEL_RUN: run.metadata.name}
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", {}).update(run_label)
    template.setdefault("spec", {})["restartPolicy"] = "Never"
    spec["backoffLimit"] = 0
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": run.metadata.namespace,
            "labels": {
                naming.LABEL_MANAGED_BY: naming.MANAGER,
                naming.LABEL_PART_OF: naming.PART_OF,
                **run_label,
            },
            "ownerReferences": [run_owner_reference(run)],
        },
        "spec": spec,
    }


def _with_env(container: dict[str, Any], env: list[dict[str, Any]]) -> dict[str, Any]:
    """The container with `env` set (replacing the user's entries of the same names: the run's
    name, registry and credentials are the operator's to say)."""
    names = {entry["name"] for entry in env}
    kept = [entry for entry in container.get("env", []) if entry.get("name") not in names]
    return {**container, "env": [*kept, *env]}


def training_job(run: RetrainingRun) -> dict[str, Any]:
    """The user's jobTemplate, told which run it trains for and where to register."""
    spec = copy.deepcopy(run.spec.training.job_template)
    values = {
        ENV_RETRAINING_RUN: run.metadata.name,
        ENV_REGISTERED_MODEL: run.spec.registry.registered_model,
        ENV_MLFLOW_TRACKING_URI: run.spec.registry.tracking_uri,
    }
    env = [
        *({"name": name, "value": value} for name, value in values.items()),
        *secret_env_manifest(run.spec.registry.credentials_secret_ref),
    ]
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    pod["containers"] = [_with_env(container, env) for container in pod.get("containers", [])]
    spec["activeDeadlineSeconds"] = int(parse_duration(run.spec.training.timeout))
    return _job(run, training_job_name(run.metadata.name), spec)


def evaluation_job(run: RetrainingRun, candidate: str, champion: str) -> dict[str, Any]:
    """`modeldeploy evaluate` on the server image: both versions scored on one download of the
    holdout; the JSON result is the container's termination message."""
    gate = run.spec.evaluation
    args = [
        "evaluate",
        "--tracking-uri", run.spec.registry.tracking_uri,
        "--registered-model", run.spec.registry.registered_model,
        "--candidate", candidate,
        "--champion", champion,
        "--holdout", gate.holdout_uri,
        "--label-column", gate.label_column,
        "--metrics", ",".join(metric.name.value for metric in gate.metrics),
        "--output", EVALUATION_RESULT_PATH,
    ]  # fmt: skip
    if gate.holdout_sha256 is not None:
        args += ["--holdout-sha256", gate.holdout_sha256]
    container: dict[str, Any] = {
        "name": EVALUATOR_CONTAINER,
        "image": run.spec.evaluator_image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "terminationMessagePath": EVALUATION_RESULT_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
        # The models and the holdout are downloaded here (the root filesystem is read-only).
        "volumeMounts": [{"name": SCRATCH_VOLUME, "mountPath": SCRATCH_PATH}],
    }
    # `modeldeploy evaluate` downloads both versions through MLflow with these.
    credentials = secret_env_manifest(run.spec.registry.credentials_secret_ref)
    if credentials:
        container["env"] = credentials
    spec: dict[str, Any] = {
        "activeDeadlineSeconds": int(parse_duration(gate.timeout)),
        "template": {
            "spec": {
                "containers": [container],
                "volumes": [{"name": SCRATCH_VOLUME, "emptyDir": {}}],
            }
        },
    }
    return _job(run, evaluation_job_name(run.metadata.name), spec)
