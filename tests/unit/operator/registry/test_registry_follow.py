"""registry.follow, pure: the pin chosen from the registry's answer, and what is remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.registry.follow import (
    Problem,
    Resolved,
    after_plan,
    choose_pin,
    pinned_deployment,
)
from modeldeploy_operator.registry.mlflow import ModelFile, RegisteredVersion
from modeldeploy_operator.rollout.plan import Failure, Plan

from tests.unit.operator.factories import md_body

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
FILE = "http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/1/models/m-{v}/artifacts/model.skops"


def digest(version: str) -> str:
    return version * 64


def resolved(version: str) -> Resolved:
    return Resolved(
        RegisteredVersion(version, f"run{version}", f"mlflow-artifacts:/1/models/m-{version}"),
        ModelFile(FILE.format(v=version), digest(version)),
    )


def followed(status: dict[str, Any] | None = None, retry: str | None = None) -> ModelDeployment:
    body = md_body()
    body["spec"]["model"] = {
        "format": "sklearn",
        "source": {
            "mlflow": {
                "trackingUri": "http://mlflow:5000",
                "registeredModel": "iris",
                "follow": {"alias": "champion"},
            },
            **({"retry": retry} if retry is not None else {}),
        },
    }
    if status is not None:
        body["status"] = status
    return ModelDeployment.model_validate(body)


def resolved_status(version: str, at: datetime = NOW) -> dict[str, Any]:
    return {
        "alias": "champion",
        "version": version,
        "artifactUri": f"mlflow-artifacts:/1/models/m-{version}",
        "modelFileUri": FILE.format(v=version),
        "sha256": digest(version),
        "resolvedAt": at.isoformat(),
    }


def stable_status(version: str) -> dict[str, Any]:
    model = {
        "format": "sklearn",
        "version": version,
        "storageUri": FILE.format(v=version),
        "sha256": digest(version),
    }
    return {"stableVersion": version, "stableServing": {"model": model}}


def test_the_pin_is_the_resolved_version_its_file_and_digest() -> None:
    following = choose_pin(followed(), resolved("2"), NOW)
    assert following.pin is not None
    assert following.pin.version == "2"
    assert following.pin.storage_uri == FILE.format(v="2")
    assert following.pin.sha256 == digest("2")
    assert following.resolved is not None and following.resolved.resolved_at == NOW


def test_resolved_at_is_when_the_reference_first_resolved_to_the_version() -> None:
    earlier = NOW - timedelta(hours=1)
    md = followed({"resolved": resolved_status("2", earlier)})
    again = choose_pin(md, resolved("2"), NOW).resolved
    assert again is not None and again.resolved_at == earlier
    moved = choose_pin(md, resolved("3"), NOW).resolved
    assert moved is not None and moved.resolved_at == NOW


def test_a_problem_keeps_the_last_resolved_version_pinned() -> None:
    md = followed({"resolved": resolved_status("2")})
    following = choose_pin(md, Problem("RegistryUnreachable", "connection refused"), NOW)
    assert following.pin is not None and following.pin.version == "2"
    report = after_plan(md, following, None, NOW)
    reachable, in_sync = report.conditions
    assert (reachable.status, reachable.reason) == (False, "RegistryUnreachable")
    assert "connection refused" in reachable.message
    assert (in_sync.status, in_sync.reason) == (False, "RegistryUnreachable")


def test_nothing_resolved_and_no_answer_pins_nothing() -> None:
    following = choose_pin(followed(), Problem("RegistryUnreachable", "timeout"), NOW)
    assert following.pin is None
    assert (
        "nothing is deployed" in after_plan(followed(), following, None, NOW).conditions[0].message
    )


def test_a_rejected_version_pins_the_stable_one_until_retry_changes() -> None:
    rejection = {"version": "2", "digest": digest("2"), "reason": "AnalysisFailed: x"}
    md = followed({**stable_status("1"), "rejected": [rejection]})
    following = choose_pin(md, resolved("2"), NOW)
    assert following.pin is not None and following.pin.version == "1"
    assert after_plan(md, following, None, NOW).rejected_version == "2"

    retried = followed({**stable_status("1"), "rejected": [rejection]}, retry="again")
    assert choose_pin(retried, resolved("2"), NOW).pin.version == "2"  # type: ignore[union-attr]


def test_a_version_re_registered_with_other_bytes_is_not_the_rejected_one() -> None:
    rejection = {"version": "2", "digest": "f" * 64, "reason": "AnalysisFailed: x"}
    md = followed({**stable_status("1"), "rejected": [rejection]})
    assert choose_pin(md, resolved("2"), NOW).pin.version == "2"  # type: ignore[union-attr]


def test_a_rollback_of_the_pinned_version_is_recorded_once() -> None:
    md = followed({**stable_status("1"), "resolved": resolved_status("2")})
    following = choose_pin(md, resolved("2"), NOW)
    pinned = pinned_deployment(md, following.pin)  # type: ignore[arg-type]
    stable = pinned.status.stable_serving
    plan = Plan(
        tracks=[],
        traffic_versions=["1"],
        stable=stable,
        target=pinned.spec.serving(),
        failure=Failure("AnalysisFailed", "2 failed checks"),
    )
    report = after_plan(pinned, following, plan, NOW)
    [rejection] = report.status["rejected"]
    assert rejection == {
        "version": "2",
        "digest": digest("2"),
        "reason": "AnalysisFailed: 2 failed checks",
        "time": "2026-12-01T01:00:00Z",
    }
    assert [e.reason for e in report.events] == ["VersionRejected"]


def test_the_pinned_deployment_reads_as_a_named_version_and_the_spec_is_untouched() -> None:
    md = followed()
    pin = choose_pin(md, resolved("2"), NOW).pin
    assert pin is not None
    pinned = pinned_deployment(md, pin)
    assert pinned.spec.serving().model == pin
    assert md.spec.model.source is not None and md.spec.model.version is None
