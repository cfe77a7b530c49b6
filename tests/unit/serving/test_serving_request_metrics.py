"""What enters the request metrics: inference calls only, never the kubelet's probes.

The probe paths are read from a Deployment built by the operator's own builder, so a change of
probe there is tested here without anyone remembering to update a list.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext, TrackPlan, build_deployment
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.metrics import ServingMetrics
from modeldeploy_serving.settings import ServerSettings
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.operator.factories import IMAGE, md_body
from tests.unit.serving.asgi import call
from tests.unit.serving.conftest import Fitted

NAME = "iris"
REQUEST_METRICS = ("modeldeploy_requests_total", "modeldeploy_request_duration_seconds")


def _operator_probe_paths(name: str) -> list[str]:
    """Every httpGet probe path of the serving container the operator builds for `name`."""
    md = ModelDeployment.model_validate(md_body(name))
    plan = TrackPlan(track="stable", serving=md.spec.serving(), replicas=1, weight=100)
    deployment = build_deployment(md, plan, BuildContext(server_image=IMAGE))
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    probes = [server[key] for key in ("startupProbe", "readinessProbe", "livenessProbe")]
    return sorted({probe["httpGet"]["path"] for probe in probes})


def _request_samples(app: ServingApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The non-zero samples of the request counter and duration histogram, from a scrape."""
    text = call(app, "GET", "/metrics").body.decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(REQUEST_METRICS) and sample.value:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_operator_probes_a_model_path_and_the_live_path() -> None:
    """Guards the tests below: they must see the model's own readiness path, not only health."""
    paths = _operator_probe_paths(NAME)
    assert f"/v2/models/{NAME}/ready" in paths
    assert "/v2/health/live" in paths


def test_the_operators_probes_are_not_counted(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, name=NAME)
    for path in _operator_probe_paths(NAME):
        assert call(app, "GET", path).status == 200, path
    assert _request_samples(app) == {}


def test_a_loading_models_probe_503_is_not_counted(tmp_path: Path) -> None:
    settings = ServerSettings(model_dir=tmp_path, name=NAME)
    app = ServingApp(settings, ServingMetrics(NAME, "1"))  # no model: still loading
    statuses = {path: call(app, "GET", path).status for path in _operator_probe_paths(NAME)}
    assert statuses[f"/v2/models/{NAME}/ready"] == 503
    assert _request_samples(app) == {}


def test_health_metadata_and_scrapes_are_not_counted(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, name=NAME)
    for path in [
        "/",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        f"/v2/models/{NAME}",
        f"/v2/models/{NAME}/ready",
        f"/v2/models/{NAME}/versions/1",
        f"/v2/models/{NAME}/versions/1/ready",
        "/v1/models",
        f"/v1/models/{NAME}",
        "/metrics",
    ]:
        assert call(app, "GET", path).status == 200, path
    assert _request_samples(app) == {}


def test_inference_calls_are_counted_with_their_protocol_and_code(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, name=NAME, version="1")
    row = [5.1, 3.5, 1.4, 0.2]
    v2_body: dict[str, Any] = {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": row}]
    }
    assert (
        call(app, "POST", f"/v1/models/{NAME}:predict", orjson.dumps({"instances": [row]})).status
        == 200
    )
    assert call(app, "POST", f"/v2/models/{NAME}/infer", orjson.dumps(v2_body)).status == 200
    assert call(app, "POST", f"/v2/models/{NAME}/infer", b"{").status == 400
    labels = (("model", NAME), ("version", "1"))
    samples = _request_samples(app)
    counts = {
        key: value for key, value in samples.items() if key[0] == "modeldeploy_requests_total"
    }
    assert counts == {
        (
            "modeldeploy_requests_total",
            tuple(sorted((*labels, ("code", "200"), ("protocol", "v1")))),
        ): 1,
        (
            "modeldeploy_requests_total",
            tuple(sorted((*labels, ("code", "200"), ("protocol", "v2")))),
        ): 1,
        (
            "modeldeploy_requests_total",
            tuple(sorted((*labels, ("code", "400"), ("protocol", "v2")))),
        ): 1,
    }
    durations = {
        dict(key[1])["protocol"]: value
        for key, value in samples.items()
        if key[0] == "modeldeploy_request_duration_seconds_count"
    }
    assert durations == {"v1": 1, "v2": 2}
