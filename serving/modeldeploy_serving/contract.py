"""What the operator, the kubectl plugin and the model server agree on, each defined once.

The operator writes these into the pods it builds (environment, mounts, `modeldeploy fetch` and
`modeldeploy serve` arguments) and the server and storage initializer read them; the plugin
writes the request annotations and the operator reads them. They live in the serving package,
which never imports the operator: both images install both packages (one distribution), so the
operator and the plugin import them from here. Standard library only, so importing this module
loads nothing of the server (the operator image has no scikit-learn).
"""

from __future__ import annotations

from typing import Final

# -- The environment the operator gives every serving container. -----------------------------
# The server labels every metric series with these (`model`, `version`), so analysis queries
# never depend on scrape relabelling; they stand in for `--name` / `--version`.
ENV_MODEL: Final = "MODELDEPLOY_MODEL"
ENV_VERSION: Final = "MODELDEPLOY_VERSION"
# Stand-ins for flags of `modeldeploy serve` / `modeldeploy fetch`, for a user's spec.server.env.
ENV_SHA256: Final = "MODELDEPLOY_SHA256"
ENV_SKOPS_TRUSTED: Final = "MODELDEPLOY_SKOPS_TRUSTED"
ENV_PVC_ROOT: Final = "MODELDEPLOY_PVC_ROOT"

# -- Where the artifact is in a serving pod. ---------------------------------------------------
# `modeldeploy fetch URI MODEL_MOUNT_PATH` writes the artifact into an emptyDir mounted here, and
# the server runs with `--model-dir MODEL_MOUNT_PATH`.
MODEL_MOUNT_PATH: Final = "/mnt/models"
# pvc://CLAIM/PATH: the claim is mounted read-only at PVC_MOUNT_ROOT/CLAIM and read in place.
PVC_MOUNT_ROOT: Final = "/mnt/pvc"
# The port `modeldeploy serve` listens on, which the operator's probes and Services target.
SERVER_PORT: Final = 8080

# -- What clients call: the only paths a Gateway routes to the server. -------------------------
# KServe V1 (`/v1/models`, `/v1/models/<name>`, `:predict`; `GET /` is its client's liveness) and
# the Open Inference Protocol V2 (health, server metadata, model metadata and readiness, infer).
# Everything else the server answers (`/metrics`: the artifact's digest, class counts, drift) is
# for the cluster's own scrapers. Gateway API semantics: an exact path, or a prefix matched on
# whole path segments (`/v2/models` matches `/v2/models/iris/infer`, not `/v2/modelsx`).
CLIENT_EXACT_PATHS: Final = ("/", "/v2", "/v2/")
CLIENT_PATH_PREFIXES: Final = ("/v1/models", "/v2/health", "/v2/models")

# -- The artifact. ------------------------------------------------------------------------------
# What a model directory holds: one of these names (a fetched single file lands under one), or
# else its only file with one of ARTIFACT_SUFFIXES (a volume served in place).
JOBLIB_FILE: Final = "model.joblib"
SKOPS_FILE: Final = "model.skops"
SKOPS_SUFFIX: Final = ".skops"
ARTIFACT_SUFFIXES: Final = (".joblib", ".pkl", ".pickle", SKOPS_SUFFIX)
# An MLflow model directory: this file names the pickled model of its sklearn flavor.
MLFLOW_FILE: Final = "MLmodel"

# -- One-shot requests: written by `kubectl modeldeploy`, acted on by the operator. --------------
# (The verbs, the patch and how the operator reads them: `modeldeploy_operator.rollout.requests`.)
REQUEST_ANNOTATION: Final = "modeldeploy.dev/request"
REQUEST_ID_ANNOTATION: Final = "modeldeploy.dev/request-id"
REQUEST_CANARY_ANNOTATION: Final = "modeldeploy.dev/request-canary"

# -- Retraining: what the operator's RetrainingRun, the user's trainer and the evaluator share. --
# The trainer registers its candidate version with this tag set to the run's name; the operator
# finds the candidate by it (never by "the newest version", which another writer may have made).
RETRAINING_RUN_TAG: Final = "modeldeploy.dev/retraining-run"
# The environment the operator gives the trainer's containers.
ENV_RETRAINING_RUN: Final = "MODELDEPLOY_RETRAINING_RUN"
ENV_REGISTERED_MODEL: Final = "MODELDEPLOY_REGISTERED_MODEL"
ENV_MLFLOW_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
# MLflow's clients' credentials (MLflow's own names): a bearer token, or basic auth. The operator
# sets them from the Secret a source names (valueFrom, never the values) in the serving pods,
# the trainer and the evaluator; `modeldeploy fetch` sends them to the tracking server only.
ENV_MLFLOW_TRACKING_USERNAME: Final = "MLFLOW_TRACKING_USERNAME"
ENV_MLFLOW_TRACKING_PASSWORD: Final = "MLFLOW_TRACKING_PASSWORD"
ENV_MLFLOW_TRACKING_TOKEN: Final = "MLFLOW_TRACKING_TOKEN"
# The metrics the evaluator computes, and whether a larger value is the better model: the gate
# compares in this direction, so a user cannot get it backwards.
GREATER_IS_BETTER: Final = {
    "accuracy": True,
    "balancedAccuracy": True,
    "f1Macro": True,
    "logLoss": False,
    "r2": True,
    "meanAbsoluteError": False,
    "rootMeanSquaredError": False,
}
# The evaluator writes its JSON result here (the container's termination message, which the
# operator reads from the pod's status: no volume, no extra service). Kubernetes keeps at most
# 4096 bytes of it.
EVALUATION_RESULT_PATH: Final = "/dev/termination-log"
EVALUATION_RESULT_MAX_BYTES: Final = 4096
