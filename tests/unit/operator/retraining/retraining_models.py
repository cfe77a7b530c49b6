"""Builders of RetrainingPolicy and RetrainingRun bodies, evaluator results and the target
ModelDeployment (following an MLflow alias) for the retraining unit tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.api.retraining import RetrainingPolicy, RetrainingRun, RunPhase

from tests.unit.operator.factories import md_body

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
TRACKING_URI = "http://mlflow.mlflow:5000"
EVALUATOR_IMAGE = "registry.example/modeldeploy-server:test"
POLICY_UID = "0a7c4e9a-3c52-4b8e-9f0e-1b2c3d4e5f60"
RUN_UID = "7e1f0d2c-8b3a-4c5d-9e6f-a0b1c2d3e4f5"

TRAINER = {
    "template": {
        "spec": {
            "containers": [
                {
                    "name": "train",
                    "image": "registry.example/trainer:1",
                    "env": [{"name": "MODELDEPLOY_RETRAINING_RUN", "value": "spoofed"}],
                }
            ]
        }
    }
}


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def target(canary: str | None = None, follow_alias: bool = True) -> ModelDeployment:
    follow = {"alias": "champion"} if follow_alias else {"version": "1"}
    body = md_body(
        "iris",
        model={
            "format": "sklearn",
            "source": {
                "mlflow": {"trackingUri": TRACKING_URI, "registeredModel": "iris", "follow": follow}
            },
        },
    )
    del body["spec"]["model"]["version"]
    del body["spec"]["model"]["storageUri"]
    body["status"] = {"stableVersion": "1", **({"canaryVersion": canary} if canary else {})}
    return ModelDeployment.model_validate(body)


def policy_body(generation: int = 1, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "targetRef": {"name": "iris"},
        "triggers": {"metric": {"above": 0.2, "holdFor": "1m"}},
        "guards": {"cooldown": "10m", "maxRuns": 3, "window": "24h", "suspendAfterFailures": 3},
        "training": {"jobTemplate": TRAINER},
        "evaluation": {
            "holdoutUri": "http://files.example/iris/holdout.csv",
            "metrics": [
                {"name": "accuracy", "threshold": 0.8, "minImprovement": 0.0},
                {"name": "logLoss"},
            ],
        },
    }
    base.update(spec)
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "RetrainingPolicy",
        "metadata": {
            "name": "iris-drift",
            "namespace": "models",
            "uid": POLICY_UID,
            "generation": generation,
        },
        "spec": base,
    }


def policy(
    generation: int = 1, status: dict[str, Any] | None = None, **spec: Any
) -> RetrainingPolicy:
    body = policy_body(generation, **spec)
    body["status"] = status or {}
    return RetrainingPolicy.model_validate(body)


def run(
    fired_at: datetime = T0,
    phase: RunPhase | None = None,
    generation: int = 1,
    name: str | None = None,
    **status: Any,
) -> RetrainingRun:
    spec = policy_body().get("spec", {})
    body = {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "RetrainingRun",
        "metadata": {
            "name": name or f"iris-drift-{int(fired_at.timestamp())}",
            "namespace": "models",
            "uid": RUN_UID,
        },
        "spec": {
            "policy": "iris-drift",
            "policyGeneration": generation,
            "targetRef": {"name": "iris"},
            "registry": {
                "trackingUri": TRACKING_URI,
                "registeredModel": "iris",
                "alias": "champion",
            },
            "trigger": {
                "source": "metric",
                "value": 0.31,
                "threshold": 0.2,
                "heldSince": (fired_at - seconds(60)).isoformat(),
                "firedAt": fired_at.isoformat(),
                "query": "max(modeldeploy_feature_drift)",
            },
            "training": spec["training"],
            "evaluation": spec["evaluation"],
            "evaluatorImage": EVALUATOR_IMAGE,
        },
        "status": {**({"phase": phase.value} if phase else {}), **status},
    }
    return RetrainingRun.model_validate(body)


def evaluation_json(
    candidate: dict[str, float] | None = None,
    champion: dict[str, float] | None = None,
    candidate_error: str | None = None,
    champion_error: str | None = None,
) -> str:
    def model(version: str, metrics: dict[str, float] | None, error: str | None) -> dict[str, Any]:
        return {"version": version, "metrics": metrics or {}, **({"error": error} if error else {})}

    return json.dumps(
        {
            "holdoutSha256": "ab" * 32,
            "rows": 45,
            "candidate": model("2", candidate, candidate_error),
            "champion": model("1", champion, champion_error),
        }
    )
