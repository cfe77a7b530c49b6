"""Property: whatever a client sends to either protocol, the answer is a 200 equal to the
estimator's own prediction or a 4xx whose JSON body says what was wrong — never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.protocol_v2 import DATATYPES

from .asgi import call
from .conftest import Fitted, make_app, save_model

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=16,
)
numbers = st.floats(min_value=-1e6, max_value=1e6) | st.integers(-1000, 1000)
cells = numbers | numbers | numbers | json_values
rows = st.lists(st.lists(cells, min_size=0, max_size=6), min_size=0, max_size=4)
good_rows = st.integers(1, 4).flatmap(
    lambda n: st.lists(st.lists(numbers, min_size=4, max_size=4), min_size=n, max_size=n)
)

v1_documents = (
    st.fixed_dictionaries(
        {"instances": good_rows | rows | st.lists(numbers, max_size=5) | json_values},
        optional={
            "parameters": st.fixed_dictionaries(
                {"method": st.sampled_from(["predict", "predict_proba", "bogus"])}
            )
            | json_values
        },
    )
    | json_values
)


@st.composite
def v2_documents(draw: st.DrawFn) -> Any:
    """Half near-valid requests (valid, or with one part broken), half anything at all."""
    if draw(st.booleans()):
        return draw(json_values)
    data: Any = draw(good_rows)
    shape: Any = list(np.asarray(data).shape)
    if draw(st.booleans()):
        data = np.asarray(data, dtype=float).reshape(-1).tolist()
    tensor: dict[str, Any] = {
        "name": "x",
        "shape": shape,
        "datatype": draw(st.sampled_from(["FP64", "FP32", "FP64", "INT64", "FP16"])),
        "data": data,
    }
    doc: dict[str, Any] = {"inputs": [tensor]}
    if draw(st.booleans()):
        doc["outputs"] = [
            {"name": n}
            for n in draw(st.lists(st.sampled_from(["predict", "predict_proba"]), max_size=2))
        ] or None
    broken = draw(
        st.sampled_from(["none", "none", "data", "shape", "datatype", "name", "drop", "inputs"])
    )
    if broken == "data":
        tensor["data"] = draw(rows | json_values)
    elif broken == "shape":
        tensor["shape"] = draw(st.lists(st.integers(-1, 6), max_size=3) | json_values)
    elif broken == "datatype":
        tensor["datatype"] = draw(st.sampled_from([*DATATYPES, "BYTES", "FLOAT"]) | json_values)
    elif broken == "name":
        tensor["name"] = draw(json_values)
    elif broken == "drop":
        del tensor[draw(st.sampled_from(["name", "shape", "datatype", "data"]))]
    elif broken == "inputs":
        doc["inputs"] = draw(st.lists(st.just(tensor)) | json_values)
    if draw(st.booleans()):
        doc["id"] = draw(st.text(max_size=5) | json_values)
    if doc.get("outputs") is None:
        doc.pop("outputs", None)
    return doc


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, models: dict[str, Fitted]
) -> tuple[ServingApp, Any]:
    directory: Path = tmp_path_factory.mktemp("property-model")
    estimator = models["logistic"].estimator
    save_model(estimator, directory)
    return make_app(directory, max_body_bytes=4096), estimator


def _check(reply: Any) -> None:
    event(f"status {reply.status}")
    assert reply.status < 500, reply.body
    if reply.status != 200:
        assert reply.status in (400, 404, 405, 413)
        error = reply.json()["error"]
        assert isinstance(error, str) and len(error) > 10


@PROPERTY_SETTINGS
@given(document=v1_documents)
def test_v1_never_5xx_and_200_means_the_estimators_answer(
    served: tuple[ServingApp, Any], document: Any
) -> None:
    app, estimator = served
    reply = call(app, "POST", "/v1/models/m:predict", json.dumps(document).encode())
    _check(reply)
    if reply.status == 200:
        X = np.asarray(document["instances"], dtype=np.float64)
        parameters = document.get("parameters") or {}
        method = parameters.get("method", "predict")
        expected = getattr(estimator, method)(X)
        assert np.array_equal(np.asarray(reply.json()["predictions"]), expected)


@PROPERTY_SETTINGS
@given(document=v2_documents())
def test_v2_never_5xx_and_200_means_the_estimators_answer(
    served: tuple[ServingApp, Any], document: Any
) -> None:
    app, estimator = served
    reply = call(app, "POST", "/v2/models/m/infer", json.dumps(document).encode())
    _check(reply)
    if reply.status == 200:
        tensor = document["inputs"][0]
        dtype = DATATYPES[tensor["datatype"]][0]
        X = np.asarray(tensor["data"]).reshape(tensor["shape"]).astype(dtype)
        for output in reply.json()["outputs"]:
            expected = getattr(estimator, output["name"])(X)
            assert output["shape"] == list(expected.shape)
            assert np.array_equal(np.asarray(output["data"]).reshape(expected.shape), expected)


@PROPERTY_SETTINGS
@given(
    body=st.binary(max_size=300),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(
        [
            "/v1/models/m:predict",
            "/v2/models/m/infer",
            "/v2/models/m",
            "/v1/models/m",
            "/v2/health/ready",
            "/v2/models/x/infer",
            "/v1/models/m:predict_proba",
        ]
    )
    | st.text(max_size=30).map(lambda t: "/" + t),
)
def test_any_bytes_any_path_any_method_never_5xx(
    served: tuple[ServingApp, Any], body: bytes, method: str, path: str
) -> None:
    app, _ = served
    reply = call(app, method, path, body)
    assert reply.status < 500, reply.body
    if path != "/metrics":
        assert reply.headers["content-type"] == "application/json"
