"""The pydantic API: defaults, every rule's Python twin, and agreement with the invalid examples
the apiserver rejects (the e2e suite checks the apiserver side with the same files)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator import api
from modeldeploy_operator.api import (
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ServingTemplate,
    parse_duration,
    parse_quantity,
)
from pydantic import ValidationError

from tests.unit.operator.factories import MakeMd, md_body

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def _errors(exc: ValidationError) -> str:
    """Every message plus every error's location spelled as the apiserver spells field paths."""
    lines = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{path}: {error['msg']}")
    return "\n".join(lines)


def _rejects(make: MakeMd, **spec: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make(**spec)
    return _errors(caught.value)


class TestDefaults:
    def test_minimal_spec_gets_documented_defaults(self, make_md: MakeMd) -> None:
        spec = make_md().spec
        assert spec.replicas == 1
        assert spec.autoscaling is None
        assert spec.rollout.strategy == "Canary"
        assert spec.rollout.steps == [10, 25, 50]
        assert spec.rollout.step_interval == "60s"
        assert spec.rollout.progress_deadline == "10m"
        assert spec.rollout.paused is False
        assert spec.rollout.analysis is None
        assert spec.traffic.router == "Auto"
        assert spec.traffic.mirror_percent == 0
        assert spec.traffic.hostnames == []
        assert spec.monitoring.service_monitor == "Auto"
        assert spec.monitoring.rules == "Auto"
        assert spec.monitoring.thresholds.error_rate_percent == 5
        assert spec.monitoring.thresholds.drift_psi == 0.25
        assert spec.server.env == []

    def test_analysis_defaults(self, make_md: MakeMd) -> None:
        analysis = make_md(rollout={"analysis": {"successRate": {"min": 99}}}).spec.rollout.analysis
        assert analysis is not None
        assert analysis.max_failed_checks == 2
        assert analysis.no_data == "Fail"
        assert analysis.prometheus_url is None

    def test_autoscaling_min_defaults_to_one(self, make_md: MakeMd) -> None:
        autoscaling = make_md(
            autoscaling={"maxReplicas": 4, "targetCPUUtilizationPercentage": 70}
        ).spec.autoscaling
        assert autoscaling is not None and autoscaling.min_replicas == 1

    def test_wire_names_are_camel_case(self, make_md: MakeMd) -> None:
        wire = make_md(
            autoscaling={"maxReplicas": 4, "targetCPUUtilizationPercentage": 70}
        ).spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert wire["model"]["storageUri"] == "s3://models/iris/1/model.joblib"
        assert wire["autoscaling"]["targetCPUUtilizationPercentage"] == 70
        assert wire["rollout"]["stepInterval"] == "60s"
        assert wire["monitoring"]["thresholds"]["latencyP99Ms"] == 500

    def test_snake_case_names_are_accepted_too(self) -> None:
        spec = ModelDeploymentSpec(
            model=api.ModelSpec(format=api.ModelFormat.SKLEARN, version="3", storage_uri="gs://b/k")
        )
        assert spec.model.storage_uri == "gs://b/k"

    def test_spec_is_immutable(self, make_md: MakeMd) -> None:
        spec = make_md().spec
        with pytest.raises(ValidationError):
            spec.__setattr__("replicas", 3)

    def test_wire_default_matches_the_model_defaults(self) -> None:
        assert api.wire_default(api.TrafficSpec) == {
            "router": "Auto",
            "hostnames": [],
            "mirrorPercent": 0,
        }
        assert (
            ModelDeploymentSpec.model_validate(
                {**md_body()["spec"], "rollout": api.wire_default(api.RolloutSpec)}
            ).rollout
            == api.RolloutSpec()
        )


class TestModel:
    @pytest.mark.parametrize(
        "uri",
        [
            "file:///models/iris/1/model.joblib",
            "pvc://models/iris/2/model.joblib",
            "pvc://models/iris/2",
            "http://files.example/iris.joblib",
            "https://files.example:8443/a/b/model.joblib?sig=abc",
            "s3://my-bucket/iris/1/model.joblib",
            "gs://bucket.with.dots/model.joblib",
            "models:/iris/3",
            "models:/iris@champion",
        ],
    )
    def test_accepted_storage_uris(self, make_md: MakeMd, uri: str) -> None:
        assert make_md(model={"storageUri": uri}).spec.model.storage_uri == uri

    @pytest.mark.parametrize(
        ("uri", "message"),
        [
            ("ftp://host/model.joblib", api.URI_SCHEME_RULE.message),
            ("/models/iris.joblib", api.URI_SCHEME_RULE.message),
            ("s3://bucket/with space", api.URI_WHITESPACE_RULE.message),
            ("file://relative/model.joblib", api.URI_FILE_RULE.message),
            ("pvc://models", api.URI_PVC_RULE.message),
            ("pvc://models/", api.URI_PVC_RULE.message),
            ("pvc://Models/iris", api.URI_PVC_RULE.message),
            ("s3://bucket", api.URI_BUCKET_RULE.message),
            ("gs://bucket/", api.URI_BUCKET_RULE.message),
            ("https://host", api.URI_HTTP_RULE.message),
            ("models:/iris", api.URI_REGISTRY_RULE.message),
            ("models:/iris/latest", api.URI_REGISTRY_RULE.message),
            ("models:/iris@", api.URI_REGISTRY_RULE.message),
        ],
    )
    def test_rejected_storage_uris(self, make_md: MakeMd, uri: str, message: str) -> None:
        assert message in _rejects(make_md, model={"storageUri": uri})

    def test_storage_uri_length_is_bounded(self, make_md: MakeMd) -> None:
        uri = "s3://bucket/" + "k" * api.MAX_URI_LENGTH
        assert "model.storageUri" in _rejects(make_md, model={"storageUri": uri})

    @pytest.mark.parametrize("version", ["1", "2.0.1", "v3-beta_1", "A" * 63, "2024.01.31"])
    def test_accepted_versions(self, make_md: MakeMd, version: str) -> None:
        assert make_md(model={"version": version}).spec.model.version == version

    @pytest.mark.parametrize("version", ["", "-1", "1.", "1/2", "a b", "é", "A" * 64])
    def test_rejected_versions(self, make_md: MakeMd, version: str) -> None:
        assert "model.version" in _rejects(make_md, model={"version": version})

    def test_sha256_must_be_64_lowercase_hex(self, make_md: MakeMd) -> None:
        assert make_md(model={"sha256": "0" * 64}).spec.model.sha256 == "0" * 64
        for bad in ("A" * 64, "0" * 63, "0" * 65, "g" * 64):
            assert "model.sha256" in _rejects(make_md, model={"sha256": bad})

    def test_format_is_an_enum(self, make_md: MakeMd) -> None:
        assert "model.format" in _rejects(make_md, model={"format": "onnx"})

    def test_unknown_fields_are_rejected(self, make_md: MakeMd) -> None:
        assert "model.uri" in _rejects(make_md, model={"uri": "s3://b/k"})
        assert "colour" in _rejects(make_md, colour="blue")


class TestReplicasAndAutoscaling:
    def test_replicas_bounds(self, make_md: MakeMd) -> None:
        assert make_md(replicas=0).spec.replicas == 0
        assert "replicas" in _rejects(make_md, replicas=-1)
        assert "replicas" in _rejects(make_md, replicas=api.MAX_REPLICAS + 1)

    def test_min_above_max(self, make_md: MakeMd) -> None:
        errors = _rejects(
            make_md,
            autoscaling={"minReplicas": 5, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50},
        )
        assert api.AUTOSCALING_BOUNDS_RULE.message in errors

    def test_min_equal_max_is_fine(self, make_md: MakeMd) -> None:
        md = make_md(autoscaling={"minReplicas": 3, "maxReplicas": 3, "targetRequestsPerSecond": 5})
        assert md.spec.autoscaling is not None

    def test_needs_a_target(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, autoscaling={"maxReplicas": 2})
        assert api.AUTOSCALING_TARGET_RULE.message in errors

    @pytest.mark.parametrize(
        "target",
        [
            {"targetCPUUtilizationPercentage": 70},
            {"targetMemoryUtilizationPercentage": 80},
            {"targetRequestsPerSecond": 0.5},
        ],
    )
    def test_any_one_target_suffices(self, make_md: MakeMd, target: dict[str, Any]) -> None:
        assert make_md(autoscaling={"maxReplicas": 2, **target}).spec.autoscaling is not None

    def test_scale_to_zero_needs_requests_per_second(self, make_md: MakeMd) -> None:
        errors = _rejects(
            make_md,
            autoscaling={"minReplicas": 0, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50},
        )
        assert api.SCALE_TO_ZERO_RULE.message in errors
        md = make_md(autoscaling={"minReplicas": 0, "maxReplicas": 2, "targetRequestsPerSecond": 1})
        assert md.spec.autoscaling is not None and md.spec.autoscaling.min_replicas == 0

    def test_replicas_above_autoscaling_max(self, make_md: MakeMd) -> None:
        errors = _rejects(
            make_md,
            replicas=5,
            autoscaling={"maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
        )
        assert api.REPLICAS_WITHIN_AUTOSCALING_RULE.message in errors

    @pytest.mark.parametrize(
        "field", ["targetCPUUtilizationPercentage", "targetMemoryUtilizationPercentage"]
    )
    def test_utilization_bounds(self, make_md: MakeMd, field: str) -> None:
        for bad in (0, 1001):
            errors = _rejects(make_md, autoscaling={"maxReplicas": 2, field: bad})
            assert f"autoscaling.{field}" in errors

    def test_requests_per_second_must_be_positive(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, autoscaling={"maxReplicas": 2, "targetRequestsPerSecond": 0})
        assert "autoscaling.targetRequestsPerSecond" in errors


class TestServer:
    def test_resources_accept_quantities(self, make_md: MakeMd) -> None:
        resources = {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": 2}}
        md = make_md(server={"resources": resources})
        assert md.spec.server.resources is not None
        assert md.spec.server.resources.limits == {"cpu": 2}

    def test_resources_accept_the_exa_suffixes(self, make_md: MakeMd) -> None:
        """The apiserver admits 1E and 1Ei; the operator must read what it admitted."""
        storage = "ephemeral-storage"
        resources = {"requests": {storage: "1E"}, "limits": {storage: "1Ei"}}
        md = make_md(server={"resources": resources})
        assert md.spec.server.resources is not None

    @pytest.mark.parametrize("bad", ["lots", "1GB", "1.5.0", "", "1Gi "])
    def test_resources_reject_non_quantities(self, make_md: MakeMd, bad: str) -> None:
        errors = _rejects(make_md, server={"resources": {"requests": {"memory": bad}}})
        assert "server.resources.requests.memory" in errors

    def test_requests_may_not_exceed_limits(self, make_md: MakeMd) -> None:
        resources = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1500m"}}
        errors = _rejects(make_md, server={"resources": resources})
        assert api.REQUESTS_WITHIN_LIMITS_RULE.message in errors

    def test_requests_equal_to_limits_in_other_units(self, make_md: MakeMd) -> None:
        resources = {"requests": {"memory": "1024Mi"}, "limits": {"memory": "1Gi"}}
        assert make_md(server={"resources": resources}).spec.server.resources is not None

    def test_resource_names(self, make_md: MakeMd) -> None:
        ok = {"requests": {"nvidia.com/gpu": 1, "hugepages-2Mi": "4Mi", "ephemeral-storage": "1Gi"}}
        assert make_md(server={"resources": ok}).spec.server.resources is not None
        errors = _rejects(make_md, server={"resources": {"limits": {"gpu": 1}}})
        assert "spec.server.resources.limits keys must be" in errors

    def test_env_reserved_names(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, server={"env": [{"name": api.ENV_MODEL, "value": "x"}]})
        assert api.RESERVED_ENV_RULE.message in errors

    def test_env_value_or_value_from(self, make_md: MakeMd) -> None:
        secret = {"secretKeyRef": {"name": "s3-credentials", "key": "secret"}}
        md = make_md(server={"env": [{"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret}]})
        assert md.spec.server.env[0].value_from is not None
        for entry in ({"name": "X"}, {"name": "X", "value": "1", "valueFrom": secret}):
            assert api.ENV_VALUE_RULE.message in _rejects(make_md, server={"env": [entry]})

    def test_env_names_unique_and_well_formed(self, make_md: MakeMd) -> None:
        twice = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
        assert "unique" in _rejects(make_md, server={"env": twice})
        assert "env[0].name" in _rejects(make_md, server={"env": [{"name": "1A=", "value": "1"}]})

    def test_image_and_workers(self, make_md: MakeMd) -> None:
        assert "server.image" in _rejects(make_md, server={"image": "has space"})
        assert "server.workers" in _rejects(make_md, server={"workers": 0})
        assert "server.imagePullPolicy" in _rejects(
            make_md, server={"imagePullPolicy": "Sometimes"}
        )

    def test_scheduling(self, make_md: MakeMd) -> None:
        toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
        server = make_md(server={"nodeSelector": {"pool": "ml"}, "tolerations": [toleration]})
        assert server.spec.server.node_selector == {"pool": "ml"}
        assert "server.tolerations" in _rejects(
            make_md, server={"tolerations": [{"key": "gpu", "effect": "Sometimes"}]}
        )
        exists_with_value = {"key": "gpu", "operator": "Exists", "value": "yes"}
        assert api.TOLERATION_EXISTS_RULE.message in _rejects(
            make_md, server={"tolerations": [exists_with_value]}
        )


class TestRollout:
    @pytest.mark.parametrize("steps", [[50], [1, 99], [5, 10, 20, 40, 80]])
    def test_accepted_steps(self, make_md: MakeMd, steps: list[int]) -> None:
        assert make_md(rollout={"steps": steps}).spec.rollout.steps == steps

    @pytest.mark.parametrize("steps", [[10, 10], [50, 25], [10, 30, 20]])
    def test_steps_strictly_increasing(self, make_md: MakeMd, steps: list[int]) -> None:
        assert api.STEPS_RULE.message in _rejects(make_md, rollout={"steps": steps})

    @pytest.mark.parametrize(("steps", "where"), [([0], "[0]"), ([10, 100], "[1]")])
    def test_steps_within_1_to_99(self, make_md: MakeMd, steps: list[int], where: str) -> None:
        assert f"rollout.steps{where}" in _rejects(make_md, rollout={"steps": steps})

    def test_steps_count_bounded(self, make_md: MakeMd) -> None:
        assert "rollout.steps" in _rejects(make_md, rollout={"steps": []})
        too_many = list(range(1, api.MAX_STEPS + 2))
        assert "rollout.steps" in _rejects(make_md, rollout={"steps": too_many})

    @pytest.mark.parametrize("field", ["stepInterval", "progressDeadline"])
    def test_durations(self, make_md: MakeMd, field: str) -> None:
        assert make_md(rollout={field: "1h30m"}).spec.rollout is not None
        assert f"rollout.{field}" in _rejects(make_md, rollout={field: "1 minute"})
        for out_of_range in ("0s", "500ms", "25h"):
            errors = _rejects(make_md, rollout={field: out_of_range})
            assert f"spec.rollout.{field} must be between 1s and 24h" in errors

    def test_analysis_needs_a_check(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, rollout={"analysis": {"maxFailedChecks": 1}})
        assert api.ANALYSIS_CHECK_RULE.message in errors

    @pytest.mark.parametrize(
        ("analysis", "where"),
        [
            ({"successRate": {"min": 101}}, "successRate.min"),
            ({"successRate": {"min": -1}}, "successRate.min"),
            ({"latencyP99Ms": {"max": 0}}, "latencyP99Ms.max"),
            ({"compareWithStable": {"maxErrorRateIncrease": 150}}, "maxErrorRateIncrease"),
            (
                {
                    "compareWithStable": {
                        "maxErrorRateIncrease": 1,
                        "maxClientErrorRateIncrease": -1,
                    }
                },
                "maxClientErrorRateIncrease",
            ),
            ({"successRate": {"min": 99, "clientErrors": "Sometimes"}}, "clientErrors"),
            ({"drift": {"maxPsi": 0}}, "drift.maxPsi"),
            ({"successRate": {"min": 99}, "maxFailedChecks": 0}, "maxFailedChecks"),
            ({"successRate": {"min": 99}, "noData": "Ignore"}, "noData"),
            ({"successRate": {"min": 99}, "prometheusUrl": "prometheus:9090"}, "prometheusUrl"),
            ({"successRate": {"min": 99}, "interval": "0s"}, "analysis.interval"),
        ],
    )
    def test_analysis_thresholds_in_range(
        self, make_md: MakeMd, analysis: dict[str, Any], where: str
    ) -> None:
        assert where in _rejects(make_md, rollout={"analysis": analysis})

    def test_full_analysis(self, make_md: MakeMd) -> None:
        analysis = {
            "prometheusUrl": "http://prometheus.monitoring:9090",
            "interval": "1m",
            "successRate": {"min": 99.5, "clientErrors": "Ignore"},
            "latencyP99Ms": {"max": 250},
            "compareWithStable": {"maxErrorRateIncrease": 1, "maxClientErrorRateIncrease": 2},
            "drift": {"maxPsi": 0.2},
            "maxFailedChecks": 3,
            "noData": "Hold",
        }
        parsed = make_md(rollout={"analysis": analysis}).spec.rollout.analysis
        assert parsed is not None
        assert parsed.model_dump(by_alias=True, mode="json") == analysis


class TestTraffic:
    def test_gateway_router_needs_a_ref(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, traffic={"router": "GatewayAPI"})
        assert api.GATEWAY_REF_REQUIRED_RULE.message in errors

    def test_replica_ratio_takes_no_gateway(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, traffic={"router": "ReplicaRatio", "gatewayRef": {"name": "w"}})
        assert api.GATEWAY_REF_UNUSED_RULE.message in errors

    @pytest.mark.parametrize("router", ["Auto", "ReplicaRatio"])
    def test_mirror_needs_a_gateway(self, make_md: MakeMd, router: str) -> None:
        errors = _rejects(make_md, traffic={"router": router, "mirrorPercent": 5})
        assert api.MIRROR_NEEDS_GATEWAY_RULE.message in errors

    @pytest.mark.parametrize("router", ["Auto", "GatewayAPI"])
    def test_mirror_with_gateway(self, make_md: MakeMd, router: str) -> None:
        traffic = {"router": router, "gatewayRef": {"name": "web"}, "mirrorPercent": 5}
        assert make_md(traffic=traffic).spec.traffic.mirror_percent == 5

    def test_hostnames_need_a_gateway_and_must_be_valid(self, make_md: MakeMd) -> None:
        errors = _rejects(make_md, traffic={"hostnames": ["iris.example.com"]})
        assert api.HOSTNAMES_NEED_GATEWAY_RULE.message in errors
        gateway = {"gatewayRef": {"name": "web", "namespace": "gateways", "sectionName": "https"}}
        ok = make_md(traffic={**gateway, "hostnames": ["iris.example.com", "*.models.example"]})
        assert ok.spec.traffic.hostnames == ["iris.example.com", "*.models.example"]
        errors = _rejects(make_md, traffic={**gateway, "hostnames": ["Bad_Host"]})
        assert "traffic.hostnames[0]" in errors
        twice = {**gateway, "hostnames": ["a.example", "a.example"]}
        assert "spec.traffic.hostnames must be unique" in _rejects(make_md, traffic=twice)

    def test_mirror_percent_range(self, make_md: MakeMd) -> None:
        traffic = {"gatewayRef": {"name": "web"}, "mirrorPercent": 101}
        assert "traffic.mirrorPercent" in _rejects(make_md, traffic=traffic)


class TestMonitoring:
    def test_thresholds(self, make_md: MakeMd) -> None:
        thresholds = {"errorRatePercent": 1, "errorRateFor": "2m", "driftFor": "1h30m"}
        parsed = make_md(monitoring={"thresholds": thresholds}).spec.monitoring.thresholds
        assert (parsed.error_rate_percent, parsed.error_rate_for) == (1, "2m")
        assert parsed.latency_for == "5m"
        assert "errorRateFor" in _rejects(make_md, monitoring={"thresholds": {"errorRateFor": "x"}})
        bad_rate = {"thresholds": {"errorRatePercent": 0}}
        assert "errorRatePercent" in _rejects(make_md, monitoring=bad_rate)

    def test_modes(self, make_md: MakeMd) -> None:
        md = make_md(monitoring={"serviceMonitor": "Disabled", "rules": "Enabled"})
        assert md.spec.monitoring.service_monitor == api.MonitoringMode.DISABLED
        assert "monitoring.rules" in _rejects(make_md, monitoring={"rules": "Sometimes"})


class TestObject:
    @pytest.mark.parametrize("name", ["1iris", "Iris", "iris_v2", "iris-", "a" * 64])
    def test_name_must_be_a_dns_1035_label(self, name: str) -> None:
        with pytest.raises(ValidationError, match=r"metadata\.name must be a DNS-1035 label"):
            ModelDeployment.model_validate(md_body(name))

    def test_metadata_and_status_are_read(self) -> None:
        body = md_body()
        body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
        body["status"] = {
            "observedGeneration": 2,
            "phase": "Progressing",
            "stableVersion": "1",
            "stableServing": {"model": body["spec"]["model"]},
            "canaryWeight": 25,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                }
            ],
            "fieldFromTheFuture": True,
        }
        md = ModelDeployment.model_validate(body)
        assert md.metadata.uid and md.metadata.generation == 3
        assert md.status.phase == api.Phase.PROGRESSING
        assert md.status.stable_serving is not None
        assert md.status.stable_serving.model.version == "1"
        assert md.status.conditions[0].status == api.ConditionStatus.TRUE

    def test_status_serialises_for_the_apiserver(self) -> None:
        status = ModelDeploymentStatus(
            phase=api.Phase.READY,
            stable_version="1",
            last_analysis=api.AnalysisResult(
                passed=False,
                success_rate=97.5,
                checks=[
                    api.AnalysisCheckResult(
                        name="successRate", value=97.5, threshold=99, passed=False
                    )
                ],
            ),
        )
        wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert wire["phase"] == "Ready"
        assert wire["lastAnalysis"]["checks"][0] == {
            "name": "successRate",
            "value": 97.5,
            "threshold": 99.0,
            "passed": False,
        }


class TestServingTemplate:
    def test_fingerprint_is_stable_and_sensitive(self, make_md: MakeMd) -> None:
        one = make_md().spec.serving()
        assert one.fingerprint() == make_md().spec.serving().fingerprint()
        assert re.fullmatch(r"[0-9a-f]{16}", one.fingerprint())
        changes: list[dict[str, Any]] = [
            {"model": {"version": "2"}},
            {"model": {"sha256": "0" * 64}},
            {"server": {"image": "other:1"}},
            {"server": {"env": [{"name": "A", "value": "1"}]}},
            {"server": {"resources": {"requests": {"cpu": "1"}}}},
        ]
        prints = {make_md(**change).spec.serving().fingerprint() for change in changes}
        assert one.fingerprint() not in prints and len(prints) == len(changes)

    def test_fingerprint_ignores_what_pods_do_not_run(self, make_md: MakeMd) -> None:
        base = make_md().spec.serving().fingerprint()
        assert make_md(replicas=7, rollout={"paused": True}).spec.serving().fingerprint() == base

    def test_round_trips_through_status(self, make_md: MakeMd) -> None:
        serving = make_md(server={"workers": 2}).spec.serving()
        wire = serving.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert ServingTemplate.model_validate(wire) == serving


class TestParsers:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("1.5h", 5400)],
    )
    def test_parse_duration(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "1d"])
    def test_parse_duration_rejects(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(text)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("100m", Decimal("0.1")),
            ("1", Decimal(1)),
            (2, Decimal(2)),
            ("1Gi", Decimal(2**30)),
            ("1024Mi", Decimal(2**30)),
            ("1.5G", Decimal("1.5e9")),
            ("1e3", Decimal(1000)),
            ("500u", Decimal("0.0005")),
            ("2E", Decimal("2e18")),
            ("1Ei", Decimal(2**60)),
            ("1.5e-3", Decimal("0.0015")),
        ],
    )
    def test_parse_quantity(self, value: int | str, expected: Decimal) -> None:
        assert parse_quantity(value) == expected

    @pytest.mark.parametrize("value", ["", "abc", "1GB", "1.2.3", "Mi"])
    def test_parse_quantity_rejects(self, value: str) -> None:
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            parse_quantity(value)


class TestExamples:
    def test_iris_example_is_valid(self) -> None:
        documents = yaml.safe_load_all((EXAMPLES / "iris.yaml").read_text())
        [body] = [doc for doc in documents if doc["kind"] == "ModelDeployment"]
        md = ModelDeployment.model_validate(body)
        assert md.metadata.name == "iris"
        assert md.spec.model.format == "sklearn"

    def test_there_are_enough_invalid_examples(self) -> None:
        assert len(INVALID) >= 14

    @pytest.mark.parametrize("path", INVALID, ids=lambda path: path.stem)
    def test_invalid_example_is_rejected_like_the_apiserver(self, path: Path) -> None:
        """Each file names the substring the apiserver's error must contain; pydantic's errors
        (messages and field paths) must contain it too, so the two sides agree."""
        first_line = path.read_text().splitlines()[0]
        assert first_line.startswith("# expect: ")
        expected = first_line.removeprefix("# expect: ")
        body = yaml.safe_load(path.read_text())
        with pytest.raises(ValidationError) as caught:
            ModelDeployment.model_validate(body)
        assert expected in _errors(caught.value)
