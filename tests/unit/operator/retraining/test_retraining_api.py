"""The retraining API: the example is valid, each rule's Python twin, and the generated CRDs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from modeldeploy_operator import crdgen
from modeldeploy_operator.api.retraining import (
    GATE_METRIC_NAMES_RULE,
    ONE_TRIGGER_RULE,
    POLICY_NAME_RULE,
    RUN_SPEC_IMMUTABLE_RULE,
    RetrainingPolicy,
)
from pydantic import ValidationError

from tests.unit.operator.retraining.retraining_models import EXAMPLES, policy_body


def test_the_example_policy_is_valid() -> None:
    body = yaml.safe_load((EXAMPLES / "retraining" / "policy.yaml").read_text())
    policy = RetrainingPolicy.model_validate(body)
    assert policy.spec.triggers.metric is not None and policy.spec.triggers.metric.query is None


def test_defaults() -> None:
    body = policy_body()
    del body["spec"]["guards"]
    policy = RetrainingPolicy.model_validate(body)
    guards = policy.spec.guards
    assert (guards.cooldown, guards.max_runs, guards.window, guards.suspend_after_failures) == (
        "1h", 3, "24h", 3,
    )  # fmt: skip
    assert policy.spec.evaluation.label_column == "label"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"triggers": {}}, ONE_TRIGGER_RULE.message),
        ({"guards": {"cooldown": "200h"}}, "spec.guards.cooldown must be between 1s and 168h"),
        (
            {"evaluation": {"holdoutUri": "http://h/x.csv", "metrics": [{"name": "r2"}] * 2}},
            GATE_METRIC_NAMES_RULE.message,
        ),
        ({"evaluation": {"holdoutUri": "http://h/x.csv", "metrics": []}}, "at least 1 item"),
        ({"training": {"jobTemplate": {"template": {}}}}, "needs template.spec.containers"),
        (
            {"triggers": {"metric": {"above": 0.2, "holdFor": "soon"}}},
            "should match pattern",
        ),
    ],
)
def test_invalid_policies_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetrainingPolicy.model_validate(policy_body(**change))


def test_a_policy_name_leaves_room_for_its_runs_and_jobs() -> None:
    body = policy_body()
    body["metadata"]["name"] = "p" * 41
    with pytest.raises(ValidationError, match="at most 40 characters"):
        RetrainingPolicy.model_validate(body)


def _validations(node: dict[str, Any]) -> list[str]:
    found = [v["rule"] for v in node.get("x-kubernetes-validations", [])]
    for child in node.get("properties", {}).values():
        found += _validations(child)
    if isinstance(node.get("items"), dict):
        found += _validations(node["items"])
    return found


def test_the_crds_carry_the_rules_and_keep_the_run_a_record() -> None:
    policy_root = crdgen.build_policy_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    run_root = crdgen.build_run_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    policy_rules = _validations(policy_root)
    for rule in (ONE_TRIGGER_RULE, GATE_METRIC_NAMES_RULE, POLICY_NAME_RULE):
        assert rule.cel in policy_rules
    assert run_root["properties"]["spec"]["x-kubernetes-validations"][0]["rule"] == (
        RUN_SPEC_IMMUTABLE_RULE.cel
    )
    template = policy_root["properties"]["spec"]["properties"]["training"]["properties"][
        "jobTemplate"
    ]
    assert template == {
        "description": template["description"],
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_the_crd_files_are_fresh() -> None:
    for name, text in crdgen.render_all().items():
        assert (EXAMPLES.parent / "crds" / name).read_text() == text, f"{name}: run `make crds`"
