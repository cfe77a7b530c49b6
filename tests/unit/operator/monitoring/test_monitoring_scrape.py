"""The PodMonitor: it scrapes exactly the serving pods the Deployment builder makes, once."""

from __future__ import annotations

from typing import Any

from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext, TrackPlan, build_deployment
from modeldeploy_operator.monitoring import scrape

from tests.unit.operator.factories import MakeMd
from tests.unit.operator.monitoring.support import crd_schema, schema_errors


def _pod_template(md: ModelDeployment, ctx: BuildContext) -> dict[str, Any]:
    plan = TrackPlan(track="stable", serving=md.spec.serving(), replicas=1, weight=100)
    template: dict[str, Any] = build_deployment(md, plan, ctx)["spec"]["template"]
    return template


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels is evaluated here"
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_selects_the_pods_of_every_version(make_md: MakeMd, ctx: BuildContext) -> None:
    monitor = scrape.build_pod_monitor(make_md(), {})
    selector = monitor["spec"]["selector"]
    for version in ("1", "2", "2.0-rc_1"):
        md = make_md(model={"version": version})
        assert _selects(selector, _pod_template(md, ctx)["metadata"]["labels"])


def test_does_not_select_another_model(make_md: MakeMd, ctx: BuildContext) -> None:
    selector = scrape.build_pod_monitor(make_md("iris"), {})["spec"]["selector"]
    for other in ("fraud", "iris-v2", "iri"):
        assert not _selects(selector, _pod_template(make_md(other), ctx)["metadata"]["labels"])


def test_scrapes_the_serving_containers_named_port(make_md: MakeMd, ctx: BuildContext) -> None:
    md = make_md()
    (endpoint,) = scrape.build_pod_monitor(md, {})["spec"]["podMetricsEndpoints"]
    ports = [
        port["name"]
        for container in _pod_template(md, ctx)["spec"]["containers"]
        for port in container.get("ports", [])
    ]
    assert ports.count(endpoint["port"]) == 1
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == scrape.INTERVAL


def test_only_its_own_namespace(make_md: MakeMd) -> None:
    monitor = scrape.build_pod_monitor(make_md(), {})
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["models"]}
    assert monitor["metadata"]["namespace"] == "models"


def test_labels_are_the_given_ones(make_md: MakeMd) -> None:
    labels = {**naming.model_labels("iris"), "release": "prom"}
    assert scrape.build_pod_monitor(make_md(), labels)["metadata"]["labels"] == labels


def test_valid_against_the_prometheus_operator_crd(make_md: MakeMd) -> None:
    monitor = scrape.build_pod_monitor(make_md(), {"release": "prom"})
    assert schema_errors(monitor, crd_schema("podmonitors")) == []


def test_schema_check_catches_a_misspelt_field(make_md: MakeMd) -> None:
    monitor = scrape.build_pod_monitor(make_md(), {})
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    errors = schema_errors(monitor, crd_schema("podmonitors"))
    assert errors == [
        ".spec.podMetricsEndpoints[0].intervall: unknown field (the apiserver would prune it)"
    ]
