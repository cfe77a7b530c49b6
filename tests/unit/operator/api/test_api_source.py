"""api.source and api.model: a registry followed instead of a version named, and the rules
between them (the Python twins of the CRD's CEL, with the same messages)."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy_operator import api
from pydantic import ValidationError

SOURCE: dict[str, Any] = {
    "mlflow": {
        "trackingUri": "http://mlflow.mlflow:5000",
        "registeredModel": "iris",
        "follow": {"alias": "champion"},
    }
}


def model(**fields: Any) -> api.ModelSpec:
    return api.ModelSpec.model_validate({"format": "sklearn", **fields})


def test_a_followed_source_needs_no_version_and_has_no_pin_of_its_own() -> None:
    followed = model(source=SOURCE)
    assert followed.source is not None
    assert followed.source.mlflow.poll_interval == "30s"
    assert followed.source.mlflow.describe() == "iris@champion"
    assert followed.pinned() is None


def test_a_named_version_pins_itself() -> None:
    named = model(version="2", storageUri="s3://b/iris/2", sha256="a" * 64)
    assert named.pinned() == api.PinnedModel(
        format=api.ModelFormat.SKLEARN, version="2", storage_uri="s3://b/iris/2", sha256="a" * 64
    )


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({}, api.MODEL_ORIGIN_RULE),
        ({"version": "1", "storageUri": "s3://b/k", "source": SOURCE}, api.MODEL_ORIGIN_RULE),
        ({"storageUri": "s3://b/k"}, api.VERSION_WITH_STORAGE_RULE),
        ({"version": "1", "source": SOURCE}, api.VERSION_WITH_STORAGE_RULE),
        ({"source": SOURCE, "sha256": "a" * 64}, api.SHA256_WITH_STORAGE_RULE),
    ],
)
def test_the_model_rules(fields: dict[str, Any], rule: api.Rule) -> None:
    with pytest.raises(ValidationError, match=rule.message.replace("(", r"\(").replace(")", r"\)")):
        model(**fields)


@pytest.mark.parametrize("follow", [{}, {"alias": "champion", "version": "3"}])
def test_follow_needs_exactly_one_of_alias_and_version(follow: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=api.FOLLOW_ONE_RULE.message):
        model(source={"mlflow": {**SOURCE["mlflow"], "follow": follow}})


def test_a_fixed_registry_version_is_described_as_a_models_uri_path() -> None:
    followed = model(source={"mlflow": {**SOURCE["mlflow"], "follow": {"version": "7"}}})
    assert followed.source is not None
    assert followed.source.mlflow.describe() == "iris/7"


@pytest.mark.parametrize("interval", ["1s", "25h"])
def test_poll_interval_is_bounded(interval: str) -> None:
    with pytest.raises(ValidationError, match="pollInterval must be between 5s and 24h"):
        model(source={"mlflow": {**SOURCE["mlflow"], "pollInterval": interval}})


def test_the_serving_template_of_a_followed_spec_needs_the_pin_first() -> None:
    spec = api.ModelDeploymentSpec.model_validate(
        {"model": {"format": "sklearn", "source": SOURCE}}
    )
    with pytest.raises(ValueError, match="pin the resolved version first"):
        spec.serving()
