"""desired_monitoring: which objects for which modes and CRDs, their metadata, the status."""

from __future__ import annotations

import itertools

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.api import MonitoringMode
from modeldeploy_operator.monitoring import desired_monitoring

from tests.unit.operator.factories import UID, MakeMd

MODES = list(MonitoringMode)


@pytest.mark.parametrize(
    ("scrape_mode", "rules_mode", "scrape_crd", "rules_crd"),
    list(itertools.product(MODES, MODES, [True, False], [True, False])),
)
def test_objects_follow_modes_and_crds(
    make_md: MakeMd,
    scrape_mode: MonitoringMode,
    rules_mode: MonitoringMode,
    scrape_crd: bool,
    rules_crd: bool,
) -> None:
    md = make_md(monitoring={"serviceMonitor": scrape_mode.value, "rules": rules_mode.value})
    manifests, status = desired_monitoring(
        md, service_monitor_available=scrape_crd, rules_available=rules_crd, extra_labels={}
    )
    expected = set()
    if scrape_mode != MonitoringMode.DISABLED and scrape_crd:
        expected.add("PodMonitor")
    if rules_mode != MonitoringMode.DISABLED and rules_crd:
        expected.add("PrometheusRule")
    assert {m["kind"] for m in manifests} == expected
    assert len(manifests) == len(expected)

    enabled_but_missing = (scrape_mode == MonitoringMode.ENABLED and not scrape_crd) or (
        rules_mode == MonitoringMode.ENABLED and not rules_crd
    )
    assert status.startswith("error: ") == enabled_but_missing
    for kind in expected:
        assert f"{kind}" in status and "created" in status
    if not expected and not enabled_but_missing:
        if scrape_mode == rules_mode == MonitoringMode.DISABLED:
            assert status == "disabled"
        else:
            assert status.startswith("unavailable: ")


def test_default_spec_creates_both_when_crds_exist(make_md: MakeMd) -> None:
    manifests, status = desired_monitoring(
        make_md(), service_monitor_available=True, rules_available=True, extra_labels={}
    )
    assert [m["kind"] for m in manifests] == ["PodMonitor", "PrometheusRule"]
    assert status == "PodMonitor and PrometheusRule created"


def test_auto_without_crds_is_silent(make_md: MakeMd) -> None:
    manifests, status = desired_monitoring(
        make_md(), service_monitor_available=False, rules_available=False, extra_labels={}
    )
    assert manifests == []
    assert status == "unavailable: monitoring.coreos.com CRDs not installed"


def test_enabled_without_crd_names_the_field_and_the_crd(make_md: MakeMd) -> None:
    md = make_md(monitoring={"rules": "Enabled"})
    manifests, status = desired_monitoring(
        md, service_monitor_available=True, rules_available=False, extra_labels={}
    )
    assert [m["kind"] for m in manifests] == ["PodMonitor"]
    assert status.startswith("error: spec.monitoring.rules is Enabled")
    assert "prometheusrules.monitoring.coreos.com" in status
    assert status.endswith("PodMonitor created")


def test_both_disabled(make_md: MakeMd) -> None:
    md = make_md(monitoring={"serviceMonitor": "Disabled", "rules": "Disabled"})
    assert desired_monitoring(
        md, service_monitor_available=True, rules_available=True, extra_labels={}
    ) == ([], "disabled")


def test_one_disabled_is_said(make_md: MakeMd) -> None:
    md = make_md(monitoring={"rules": "Disabled"})
    _, status = desired_monitoring(
        md, service_monitor_available=True, rules_available=True, extra_labels={}
    )
    assert status == "PodMonitor created; PrometheusRule disabled"


def test_metadata_names_labels_and_owner(make_md: MakeMd) -> None:
    md = make_md("fraud")
    extra = {"release": "kube-prometheus-stack", naming.LABEL_MODEL: "someone-else"}
    manifests, _ = desired_monitoring(
        md, service_monitor_available=True, rules_available=True, extra_labels=extra
    )
    for manifest in manifests:
        meta = manifest["metadata"]
        assert meta["name"] == "fraud"
        assert meta["namespace"] == "models"
        # The operator's labels win over configured ones: the controller finds owners by them.
        expected = {**naming.model_labels("fraud"), "release": "kube-prometheus-stack"}
        assert meta["labels"] == expected
        (owner,) = meta["ownerReferences"]
        assert owner["uid"] == UID and owner["controller"] is True
        assert owner["kind"] == "ModelDeployment" and owner["name"] == "fraud"
