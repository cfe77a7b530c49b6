"""The generated CRD: structural, documented, carrying every rule; and the committed file fresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator import api, crdgen

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def crd() -> Schema:
    return crdgen.build_crd()


@pytest.fixture(scope="module")
def version(crd: Schema) -> Schema:
    [only] = crd["spec"]["versions"]
    return dict(only)


@pytest.fixture(scope="module")
def root(version: Schema) -> Schema:
    return dict(version["schema"]["openAPIV3Schema"])


def _nodes(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its field path (spec.rollout.steps[*], ...)."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


def _properties(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}" if path else name
        yield child_path, child
        yield from _properties(child, child_path)
        if isinstance(child.get("items"), dict):
            yield from _properties(child["items"], f"{child_path}[*]")


def _at(root: Schema, path: str) -> Schema:
    node = root
    for part in path.split("."):
        node = node["items"] if part == "*" else node["properties"][part]
    return node


class TestIdentity:
    def test_names(self, crd: Schema) -> None:
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["metadata"]["name"] == "modeldeployments.modeldeploy.dev"
        spec = crd["spec"]
        assert spec["group"] == "modeldeploy.dev"
        assert spec["scope"] == "Namespaced"
        assert spec["names"] == {
            "kind": "ModelDeployment",
            "listKind": "ModelDeploymentList",
            "plural": "modeldeployments",
            "singular": "modeldeployment",
            "shortNames": ["md", "mdep"],
            "categories": ["modeldeploy"],
        }

    def test_version_and_subresources(self, version: Schema) -> None:
        assert version["name"] == "v1alpha1"
        assert version["served"] is True and version["storage"] is True
        assert version["subresources"] == {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        }

    def test_printer_columns(self, version: Schema) -> None:
        columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
        default = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
        assert default == ["Version", "Canary", "Weight", "Phase", "Ready", "Age"]
        assert columns["Version"]["jsonPath"] == ".status.stableVersion"
        assert columns["Canary"]["jsonPath"] == ".status.canaryVersion"
        assert columns["Weight"]["jsonPath"] == ".status.canaryWeight"
        assert columns["Weight"]["type"] == "integer"
        assert columns["Phase"]["jsonPath"] == ".status.phase"
        assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
        assert columns["Age"] == {
            "name": "Age",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
        }

    def test_printer_columns_point_at_status_fields(self, root: Schema, version: Schema) -> None:
        status = root["properties"]["status"]["properties"]
        for column in version["additionalPrinterColumns"]:
            field = column["jsonPath"].split(".")[2].split("[")[0]
            if column["jsonPath"].startswith(".status."):
                assert field in status, column


class TestStructural:
    def test_no_json_schema_leftovers(self, root: Schema) -> None:
        for path, node in _nodes(root):
            assert "$ref" not in node and "$defs" not in node, path
            assert "title" not in node, path
            assert "allOf" not in node and "oneOf" not in node, path
            assert node.get("additionalProperties") is not False, path
            if "anyOf" in node:
                # The only union a structural schema allows: int-or-string.
                assert node.get("x-kubernetes-int-or-string") is True, path
                assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            for bound in ("exclusiveMinimum", "exclusiveMaximum"):
                assert isinstance(node.get(bound, True), bool), path

    def test_every_node_is_typed(self, root: Schema) -> None:
        for path, node in _nodes(root):
            assert "type" in node or node.get("x-kubernetes-int-or-string") is True, path
            assert node.get("type") != "null", path

    def test_every_property_is_described(self, root: Schema) -> None:
        for path, node in _properties(root):
            if path != "metadata":
                assert node.get("description"), path

    def test_required_fields_exist(self, root: Schema) -> None:
        for path, node in _nodes(root):
            for name in node.get("required", []):
                assert name in node["properties"], (path, name)

    def test_list_map_keys_are_required(self, root: Schema) -> None:
        for path, node in _nodes(root):
            if node.get("x-kubernetes-list-type") == "map":
                keys = node["x-kubernetes-list-map-keys"]
                assert set(keys) <= set(node["items"]["required"]), path

    def test_defaults_are_full_objects_that_pydantic_accepts(self, root: Schema) -> None:
        spec = root["properties"]["spec"]["properties"]
        assert spec["replicas"]["default"] == 1
        assert spec["rollout"]["default"] == api.wire_default(api.RolloutSpec)
        assert spec["traffic"]["default"] == api.wire_default(api.TrafficSpec)
        assert spec["monitoring"]["default"] == api.wire_default(api.MonitoringSpec)
        assert api.RolloutSpec.model_validate(spec["rollout"]["default"]) == api.RolloutSpec()

    def test_bounds_and_patterns_survive(self, root: Schema) -> None:
        spec = root["properties"]["spec"]
        assert _at(spec, "model.sha256")["pattern"] == api.SHA256_PATTERN
        assert _at(spec, "model.version")["maxLength"] == 63
        assert _at(spec, "model.format")["enum"] == ["sklearn"]
        steps = _at(spec, "rollout.steps")
        assert (steps["items"]["minimum"], steps["items"]["maximum"]) == (1, 99)
        assert steps["maxItems"] == api.MAX_STEPS
        rps = _at(spec, "autoscaling.targetRequestsPerSecond")
        assert (rps["minimum"], rps["exclusiveMinimum"]) == (0, True)
        assert _at(spec, "traffic.router")["enum"] == ["Auto", "GatewayAPI", "ReplicaRatio"]
        assert _at(spec, "rollout.analysis.noData")["enum"] == ["Fail", "Pass", "Hold"]
        quantity = _at(spec, "server.resources.requests")["additionalProperties"]
        assert quantity["pattern"] == api.QUANTITY_PATTERN

    def test_status_is_permissive(self, root: Schema) -> None:
        status = root["properties"]["status"]
        for path, node in _nodes(status):
            leftover = crdgen._VALIDATION_KEYWORDS & node.keys()
            assert not leftover, (path, leftover)
        assert _at(status, "canaryVersion")["nullable"] is True
        assert _at(status, "phase")["enum"] == [p.value for p in api.Phase]
        assert _at(status, "stableServing.model.version")["type"] == "string"

    def test_status_conditions_have_the_kubernetes_shape(self, root: Schema) -> None:
        conditions = _at(root["properties"]["status"], "conditions")
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        item = conditions["items"]
        assert set(item["properties"]) == {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        }
        assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


def _rules(root: Schema) -> dict[str, list[dict[str, str]]]:
    return {
        path: node["x-kubernetes-validations"]
        for path, node in _nodes(root)
        if "x-kubernetes-validations" in node
    }


EXPECTED_RULES = {
    "": [api.NAME_RULE],
    "spec": [api.REPLICAS_WITHIN_AUTOSCALING_RULE],
    "spec.model.storageUri": list(api.STORAGE_URI_RULES),
    "spec.autoscaling": [
        api.AUTOSCALING_BOUNDS_RULE,
        api.AUTOSCALING_TARGET_RULE,
        api.SCALE_TO_ZERO_RULE,
    ],
    "spec.server.resources": [api.REQUESTS_WITHIN_LIMITS_RULE],
    "spec.server.env": [api.RESERVED_ENV_RULE],
    "spec.server.env[*]": [api.ENV_VALUE_RULE],
    "spec.rollout.steps": [api.STEPS_RULE],
    "spec.rollout.analysis": [api.ANALYSIS_CHECK_RULE],
    "spec.traffic": [
        api.GATEWAY_REF_REQUIRED_RULE,
        api.GATEWAY_REF_UNUSED_RULE,
        api.MIRROR_NEEDS_GATEWAY_RULE,
        api.HOSTNAMES_NEED_GATEWAY_RULE,
    ],
}


class TestRules:
    def test_rules_sit_where_they_belong(self, root: Schema) -> None:
        rules = _rules(root)
        for path, expected in EXPECTED_RULES.items():
            assert rules[path] == [rule.to_schema() for rule in expected], path

    def test_duration_and_resource_name_rules(self, root: Schema) -> None:
        rules = _rules(root)
        for path in (
            "spec.rollout.stepInterval",
            "spec.rollout.progressDeadline",
            "spec.rollout.analysis.interval",
        ):
            [rule] = rules[path]
            assert rule["message"] == f"{path} must be between 1s and 24h"
            assert "duration(self)" in rule["rule"]
        for path in ("spec.server.resources.requests", "spec.server.resources.limits"):
            [rule] = rules[path]
            assert rule["message"].startswith(f"{path} keys must be")

    def test_every_message_names_a_field(self, root: Schema) -> None:
        for path, rules in _rules(root).items():
            for rule in rules:
                assert rule["message"].startswith(("spec.", "metadata.")), (path, rule)

    def test_field_paths_point_at_declared_fields(self, root: Schema) -> None:
        for path, rules in _rules(root).items():
            node = _at(root, path.replace("[*]", ".*")) if path else root
            for rule in rules:
                if "fieldPath" in rule:
                    assert rule["fieldPath"].removeprefix(".") in node["properties"], rule

    def test_lists_and_strings_walked_by_cel_are_bounded(self, root: Schema) -> None:
        for path, node in _nodes(root):
            if "x-kubernetes-validations" not in node or not path.startswith("spec"):
                continue
            bound = {"array": "maxItems", "object": None, "string": "maxLength"}[node["type"]]
            if node["type"] == "object" and "additionalProperties" in node:
                bound = "maxProperties"
            if bound is not None:
                assert bound in node, path


class TestFile:
    def test_committed_crd_is_fresh(self) -> None:
        """Fails when the api package changed without `make crds`."""
        assert CRD_FILE.read_text() == crdgen.render(), "crds/ is stale: run `make crds`"

    def test_file_parses_to_the_built_crd(self) -> None:
        assert yaml.safe_load(CRD_FILE.read_text()) == crdgen.build_crd()

    def test_render_is_deterministic_and_alias_free(self) -> None:
        text = crdgen.render()
        assert text == crdgen.render()
        assert "&id" not in text and "*id" not in text
        assert text.startswith("# Generated by")

    def test_cli_output(self, tmp_path: Path) -> None:
        target = tmp_path / "out" / "crd.yaml"
        assert crdgen.main(["--output", str(target)]) == 0
        assert target.read_text() == crdgen.render()
        assert crdgen.main(["--check", str(target)]) == 0

    def test_cli_check_reports_a_stale_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        stale = tmp_path / "crd.yaml"
        stale.write_text(crdgen.render().replace("shortNames:\n    - md\n", "shortNames:\n"))
        assert crdgen.main(["--check", str(stale)]) == 1
        out, err = capsys.readouterr()
        assert "-    - md" not in out and "+    - md" in out
        assert "make crds" in err
        assert crdgen.main(["--check", str(tmp_path / "missing.yaml")]) == 1


class TestConversion:
    def test_unions_other_than_optional_are_refused(self) -> None:
        with pytest.raises(ValueError, match="union"):
            crdgen._convert({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {}, status=False)

    def test_optional_becomes_nullable_only_in_status(self) -> None:
        optional = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
        assert crdgen._convert(optional, {}, status=False) == {"type": "string"}
        assert crdgen._convert(optional, {}, status=True) == {"type": "string", "nullable": True}

    def test_references_are_inlined_with_the_field_description_winning(self) -> None:
        defs = {"Thing": {"type": "object", "description": "class doc", "title": "Thing"}}
        node = {"$ref": "#/$defs/Thing", "description": "field doc"}
        assert crdgen._convert(node, defs, status=False) == {
            "description": "field doc",
            "type": "object",
        }
