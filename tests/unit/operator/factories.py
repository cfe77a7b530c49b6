"""Small builders of ModelDeployment bodies for the operator's unit tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from modeldeploy_operator.api import ModelDeployment

UID = "6f1d6c0e-2b1a-4c55-9a57-0d5b1f0c9e11"
IMAGE = "registry.example/modeldeploy-server:test"

BASE_SPEC: dict[str, Any] = {
    "model": {
        "format": "sklearn",
        "version": "1",
        "storageUri": "s3://models/iris/1/model.joblib",
    }
}

MakeMd = Callable[..., ModelDeployment]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def md_body(name: str = "iris", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "models", "uid": UID, "generation": 3},
        "spec": _merge(BASE_SPEC, spec),
    }
