"""The route table: which endpoint each path reaches, with which methods, and which are counted
as inference calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.errors import NotFound
from modeldeploy_serving.metrics import PROTOCOLS

from .conftest import Fitted

V1, V2 = PROTOCOLS.index("v1"), PROTOCOLS.index("v2")  # the `protocol` label they are counted as


@pytest.mark.parametrize(
    ("path", "endpoint", "methods", "counted_as", "model", "version"),
    [
        ("/v1/models/m:predict", "predict", ("POST",), V1, "m", None),
        ("/v2/models/m/infer", "infer", ("POST",), V2, "m", None),
        ("/v2/models/m/versions/3/infer", "infer", ("POST",), V2, "m", "3"),
        ("/v2/models/m/ready", "model_ready", ("GET",), None, "m", None),
        ("/v2/models/m/versions/3/ready", "model_ready", ("GET",), None, "m", "3"),
        ("/v2/models/m", "model_metadata", ("GET",), None, "m", None),
        ("/v2/models/other", "model_metadata", ("GET",), None, "other", None),
        ("/v1/models/m", "model_status", ("GET",), None, "m", None),
        ("/v1/models", "model_list", ("GET",), None, None, None),
        ("/v2/health/live", "live", ("GET",), None, None, None),
        ("/v2/health/ready", "ready", ("GET",), None, None, None),
        ("/v2", "server_metadata", ("GET",), None, None, None),
        ("/v2/", "server_metadata", ("GET",), None, None, None),
        ("/", "live", ("GET",), None, None, None),
        ("/metrics", "scrape", ("GET",), None, None, None),
    ],
)
def test_each_path_reaches_its_endpoint(
    models: dict[str, Fitted],
    app_for: Callable[..., ServingApp],
    path: str,
    endpoint: str,
    methods: tuple[str, ...],
    counted_as: int | None,
    model: str | None,
    version: str | None,
) -> None:
    route = app_for(models["logistic"].estimator).routes.route(path)
    assert route.endpoint.__name__ == endpoint
    assert (route.methods, route.counted_as, route.model, route.version) == (
        methods,
        counted_as,
        model,
        version,
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/nowhere", "/v1/models/m:predict"),
        ("/v2/models/m/bogus", "/v2/models/m/infer"),
        ("/v1/models/m:explain", "use :predict"),
    ],
)
def test_an_unknown_path_says_where_the_model_is(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], path: str, message: str
) -> None:
    with pytest.raises(NotFound, match=message):
        app_for(models["logistic"].estimator).routes.route(path)


@pytest.mark.parametrize("name", ["m", "a/b", "a:b", "a:predict", "versions"])
def test_the_served_models_paths_route_as_any_other_name_would(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], name: str
) -> None:
    # The served model's routes are built once, not parsed per request: the same answer, also
    # for names the parser splits (a 404 stays a 404).
    served = app_for(models["logistic"].estimator, name=name).routes
    other = app_for(models["logistic"].estimator, name="other").routes
    for path in (
        f"/v1/models/{name}:predict",
        f"/v2/models/{name}/infer",
        f"/v2/models/{name}/versions/1/infer",
        f"/v1/models/{name}",
        f"/v2/models/{name}",
        f"/v2/models/{name}/ready",
    ):
        try:
            expected = other.route(path)
        except NotFound:
            with pytest.raises(NotFound):
                served.route(path)
            continue
        got = served.route(path)
        assert (got.endpoint.__name__, got.methods, got.counted_as, got.model, got.version) == (
            expected.endpoint.__name__,
            expected.methods,
            expected.counted_as,
            expected.model,
            expected.version,
        ), path
