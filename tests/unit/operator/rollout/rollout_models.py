"""ModelDeployments as the routers receive them (read from the API: with a uid)."""

from __future__ import annotations

from typing import Any

from modeldeploy_operator.api import ModelDeployment, ServingTemplate


def model_deployment(traffic: dict[str, Any] | None = None, **spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "iris", "namespace": "prod", "uid": "0b8e-uid"},
            "spec": {
                "model": {"format": "sklearn", "version": "2", "storageUri": "pvc://m/iris/2"},
                "traffic": traffic or {},
                **spec,
            },
        }
    )


def serving(md: ModelDeployment, version: str) -> ServingTemplate:
    """What `md`'s pods would run for `version`."""
    return ServingTemplate(
        model=md.spec.model.model_copy(update={"version": version}), server=md.spec.server
    )
