"""Per-version Services and the model Service clients call."""

from __future__ import annotations

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.builders import TrackPlan, build_model_service, build_track_service

from tests.unit.operator.factories import UID, MakeMd

PORTS = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_track_service(make_md: MakeMd) -> None:
    md = make_md(model={"version": "2.1"})
    service = build_track_service(md, TrackPlan("canary", md.spec.serving(), 1, 10))
    assert service["apiVersion"] == "v1" and service["kind"] == "Service"
    assert service["metadata"]["name"] == naming.track_name("iris", "2.1")
    assert service["metadata"]["namespace"] == "models"
    assert service["metadata"]["labels"] == naming.labels_for("iris", "2.1", "canary")
    assert service["metadata"]["ownerReferences"][0]["uid"] == UID
    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": {"modeldeploy.dev/model": "iris", "modeldeploy.dev/version": "2.1"},
        "ports": PORTS,
    }


def test_model_service_for_one_version(make_md: MakeMd) -> None:
    service = build_model_service(make_md(), ["1"])
    assert service["metadata"]["name"] == "iris"
    assert service["metadata"]["labels"] == naming.model_labels("iris")
    assert naming.LABEL_VERSION not in service["metadata"]["labels"]
    assert service["metadata"]["ownerReferences"][0]["controller"] is True
    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": {"modeldeploy.dev/model": "iris", "modeldeploy.dev/version": "1"},
        "ports": PORTS,
    }


def test_model_service_for_several_versions_selects_the_model(make_md: MakeMd) -> None:
    service = build_model_service(make_md(), ["2", "1"])
    assert service["spec"]["selector"] == {"modeldeploy.dev/model": "iris"}


def test_duplicates_count_once(make_md: MakeMd) -> None:
    service = build_model_service(make_md(), ["1", "1"])
    assert service["spec"]["selector"][naming.LABEL_VERSION] == "1"


def test_no_versions_is_refused(make_md: MakeMd) -> None:
    with pytest.raises(ValueError, match="at least one version"):
        build_model_service(make_md(), [])
