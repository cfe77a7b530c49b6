"""The chart's generated files: fresh, and equal to the sources they copy."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from modeldeploy_operator import __version__, chartgen, crdgen
from modeldeploy_operator.chart_values import Values

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "modeldeploy"


def test_every_generated_chart_file_is_fresh() -> None:
    stale = chartgen.stale_files(CHART)
    assert not stale, "".join(stale.values()) + "\nrun `python -m modeldeploy_operator.chartgen`"


def test_check_mode_fails_on_a_stale_file_and_names_it(tmp_path: Path) -> None:
    chartgen.write(tmp_path)
    assert chartgen.main(["--chart", str(tmp_path), "--check"]) == 0
    (tmp_path / "values.yaml").write_text("replicaCount: 3\n")
    assert chartgen.main(["--chart", str(tmp_path), "--check"]) == 1
    assert chartgen.write(tmp_path) == ["values.yaml"]


def test_the_chart_crd_is_the_generated_crd_and_the_one_in_crds() -> None:
    chart_crd = (CHART / "crds" / "modeldeploy.dev_modeldeployments.yaml").read_text()
    assert chart_crd == crdgen.render()
    assert chart_crd == (ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml").read_text()


def test_the_dashboard_is_the_monitoring_dashboard() -> None:
    source = ROOT / "operator" / "modeldeploy_operator" / "monitoring" / "dashboard.json"
    copied = CHART / "files" / "dashboard.json"
    assert copied.read_text() == source.read_text()
    assert json.loads(copied.read_text())["uid"]


def test_chart_and_app_version_are_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == __version__ != "0.0.0"


def test_values_yaml_holds_exactly_the_typed_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values == Values().model_dump(by_alias=True, mode="json")
    assert Values.model_validate(values) == Values()


def test_values_schema_is_self_contained_and_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    text = json.dumps(schema)
    assert "$ref" not in text and '"title"' not in text

    def closed(node: dict[str, object], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for name, child in node["properties"].items():  # type: ignore[attr-defined]
                closed(child, f"{path}.{name}")

    closed(schema, "values")


def test_peering_crds_describe_kopf_dev_v1() -> None:
    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()))
    scopes = {d["spec"]["names"]["kind"]: d["spec"]["scope"] for d in docs}
    assert scopes == {"ClusterKopfPeering": "Cluster", "KopfPeering": "Namespaced"}
    for doc in docs:
        [version] = doc["spec"]["versions"]
        assert version["name"] == "v1" and version["storage"] and version["served"]
        # kopf merge-patches `status` in the main resource: no status subresource.
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
