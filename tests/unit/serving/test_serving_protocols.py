"""Both protocols in-process: answers equal to the estimator's own, and every refusal a 4xx that
names the problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.errors import RESPONSE_CODES, RequestError
from modeldeploy_serving.metrics import ServingMetrics
from modeldeploy_serving.settings import ServerSettings

from .asgi import call
from .conftest import Fitted

V1 = "/v1/models/m:predict"
V2 = "/v2/models/m/infer"


def v2_body(
    rows: Any, datatype: str = "FP64", shape: list[int] | None = None, **extra: Any
) -> bytes:
    array = np.asarray(rows)
    doc = {
        "inputs": [
            {
                "name": "x",
                "shape": shape if shape is not None else list(array.shape),
                "datatype": datatype,
                "data": array.reshape(-1).tolist(),
            }
        ],
        **extra,
    }
    return orjson.dumps(doc)


def test_v1_predictions_equal_the_estimators(
    fitted: Fitted, app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(fitted.estimator)
    rows = fitted.X[3:20]
    reply = call(app, "POST", V1, orjson.dumps({"instances": rows.tolist()}))
    assert reply.status == 200, reply.body
    got = np.asarray(reply.json()["predictions"])
    expected = fitted.estimator.predict(rows)
    assert got.dtype.kind == expected.dtype.kind or expected.dtype.kind in "OU"
    assert got.tolist() == expected.tolist()
    # one row at a time too: the same as predict on that single row
    for row in fitted.X[:5]:
        reply = call(app, "POST", V1, orjson.dumps({"instances": [row.tolist()]}))
        assert reply.json()["predictions"] == fitted.estimator.predict(row[None, :]).tolist()


def test_v2_predictions_equal_the_estimators(
    fitted: Fitted, app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(fitted.estimator)
    rows = fitted.X[7:40]
    reply = call(app, "POST", V2, v2_body(rows, id="req-1"))
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["model_name"] == "m" and doc["model_version"] == "1" and doc["id"] == "req-1"
    [output] = doc["outputs"]
    expected = fitted.estimator.predict(rows)
    assert output["name"] == "predict"
    assert output["shape"] == [len(rows)]
    assert (
        output["datatype"]
        == {"i": "INT64", "f": "FP64", "U": "BYTES", "O": "BYTES"}[expected.dtype.kind]
    )
    assert output["data"] == expected.tolist()


def test_nested_v2_data_is_accepted(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    fitted = models["logistic"]
    app = app_for(fitted.estimator)
    rows = fitted.X[:3]
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": rows.tolist()}]}
    )
    reply = call(app, "POST", V2, body)
    assert reply.status == 200, reply.body
    assert reply.json()["outputs"][0]["data"] == fitted.estimator.predict(rows).tolist()


@pytest.mark.parametrize("name", ["logistic", "pipeline", "forest"])
def test_predict_proba_on_both_protocols(
    name: str, models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    fitted = models[name]
    app = app_for(fitted.estimator)
    rows = fitted.X[40:60]
    expected = fitted.estimator.predict_proba(rows)

    v1 = call(
        app,
        "POST",
        V1,
        orjson.dumps({"instances": rows.tolist(), "parameters": {"method": "predict_proba"}}),
    )
    assert v1.status == 200, v1.body
    assert np.array_equal(np.asarray(v1.json()["predictions"]), expected)

    v2 = call(
        app,
        "POST",
        V2,
        v2_body(rows, outputs=[{"name": "predict_proba"}, {"name": "predict"}]),
    )
    assert v2.status == 200, v2.body
    proba, predict = v2.json()["outputs"]
    assert proba["name"] == "predict_proba" and proba["datatype"] == "FP64"
    assert proba["shape"] == list(expected.shape)
    assert np.array_equal(np.asarray(proba["data"]).reshape(expected.shape), expected)
    assert predict["data"] == fitted.estimator.predict(rows).tolist()


def test_fp32_and_int_tensors_go_to_the_model_as_declared(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    fitted = models["ridge"]
    app = app_for(fitted.estimator)
    rows = fitted.X[:4].astype(np.float32)
    reply = call(app, "POST", V2, v2_body(rows.tolist(), datatype="FP32", shape=[4, 10]))
    assert reply.status == 200, reply.body
    assert reply.json()["outputs"][0]["data"] == fitted.estimator.predict(rows).tolist()
    ints = np.arange(20).reshape(2, 10)
    reply = call(app, "POST", V2, v2_body(ints, datatype="INT32"))
    assert reply.json()["outputs"][0]["data"] == fitted.estimator.predict(ints).tolist()


BAD: list[tuple[str, str, bytes, int, str]] = [
    ("malformed json", V1, b'{"instances": [[1,2,3,4]', 400, "not valid JSON"),
    ("empty body", V1, b"", 400, "empty"),
    ("not an object", V1, b"[[1,2,3,4]]", 400, "JSON object"),
    ("missing instances", V1, b'{"inputs": [[1,2,3,4]]}', 400, "no 'instances'"),
    ("instances not a list", V1, b'{"instances": 3}', 400, "must be a list"),
    ("empty batch", V1, b'{"instances": []}', 400, "empty"),
    ("empty rows", V1, b'{"instances": [[], []]}', 400, "empty"),
    ("1-D instances", V1, b'{"instances": [1,2,3,4]}', 400, "2-D"),
    ("extra nesting", V1, b'{"instances": [[[1,2,3,4]]]}', 400, "2-D"),
    ("ragged rows", V1, b'{"instances": [[1,2,3,4],[1,2,3]]}', 400, "rectangular"),
    ("wrong feature count", V1, b'{"instances": [[1,2,3]]}', 400, "4 features"),
    ("strings", V1, b'{"instances": [[1,"2",3,4]]}', 400, "string '2'"),
    ("null", V1, b'{"instances": [[1,null,3,4]]}', 400, "null"),
    ("object in row", V1, b'{"instances": [[1,{},3,4]]}', 400, "an object"),
    ("NaN literal", V1, b'{"instances": [[NaN,1,2,3]]}', 400, "not valid JSON"),
    ("overflowing number", V1, b'{"instances": [[1e999,1,2,3]]}', 400, "not valid JSON"),
    ("bad method", V1, b'{"instances": [[1,2,3,4]], "parameters": {"method": "x"}}', 400, "method"),
    ("bad parameters", V1, b'{"instances": [[1,2,3,4]], "parameters": 3}', 400, "parameters"),
    ("v2 malformed", V2, b"{", 400, "not valid JSON"),
    ("v2 missing inputs", V2, b"{}", 400, "'inputs'"),
    ("v2 two inputs", V2, b'{"inputs": [{}, {}]}', 400, "exactly one"),
    ("v2 input not object", V2, b'{"inputs": [3]}', 400, "object"),
    (
        "v2 missing data",
        V2,
        b'{"inputs": [{"name":"x","shape":[1,4],"datatype":"FP64"}]}',
        400,
        "no 'data'",
    ),
    (
        "v2 shape/data mismatch",
        V2,
        v2_body([[1, 2, 3, 4]], shape=[2, 4]),
        400,
        "needs 8 values",
    ),
    (
        "v2 nested mismatch",
        V2,
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [4, 1], "datatype": "FP64", "data": [[1, 2, 3, 4]]}]}
        ),
        400,
        "nested as shape",
    ),
    ("v2 1-D shape", V2, v2_body([1, 2, 3, 4], shape=[4]), 400, "[rows, features]"),
    ("v2 bad shape", V2, v2_body([[1, 2, 3, 4]], shape=[1, -4]), 400, "non-negative"),
    ("v2 bad datatype", V2, v2_body([[1, 2, 3, 4]], datatype="FLOAT"), 400, "datatype"),
    ("v2 BYTES", V2, v2_body([[1, 2, 3, 4]], datatype="BYTES"), 400, "BYTES"),
    ("v2 floats as INT32", V2, v2_body([[1.5, 2, 3, 4]], datatype="INT32"), 400, "INT32"),
    ("v2 out of INT8 range", V2, v2_body([[1, 2, 3, 400]], datatype="INT8"), 400, "range"),
    ("v2 numbers as BOOL", V2, v2_body([[1, 2, 3, 4]], datatype="BOOL"), 400, "BOOL"),
    ("v2 FP16 overflow", V2, v2_body([[1e6, 2, 3, 4]], datatype="FP16"), 400, "infinite"),
    ("v2 strings", V2, v2_body([["a", "b", "c", "d"]]), 400, "string"),
    ("v2 empty batch", V2, v2_body(np.zeros((0, 4))), 400, "no rows"),
    ("v2 wrong features", V2, v2_body([[1, 2, 3]]), 400, "4 features"),
    ("v2 unknown output", V2, v2_body([[1, 2, 3, 4]], outputs=[{"name": "p"}]), 400, "outputs[0]"),
    ("v2 outputs not list", V2, v2_body([[1, 2, 3, 4]], outputs={}), 400, "'outputs'"),
    ("v2 id not string", V2, v2_body([[1, 2, 3, 4]], id=3), 400, "'id'"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_a_4xx_naming_the_problem(
    path: str,
    body: bytes,
    status: int,
    message: str,
    models: dict[str, Fitted],
    app_for: Callable[..., ServingApp],
) -> None:
    app = app_for(models["logistic"].estimator)
    reply = call(app, "POST", path, body)
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert message in reply.json()["error"]


def test_predict_proba_on_a_regressor_is_a_400(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["ridge"].estimator)
    row = models["ridge"].X[:1].tolist()
    v1 = call(
        app, "POST", V1, orjson.dumps({"instances": row, "parameters": {"method": "predict_proba"}})
    )
    v2 = call(app, "POST", V2, v2_body(row, outputs=[{"name": "predict_proba"}]))
    assert (v1.status, v2.status) == (400, 400)
    assert "no predict_proba" in v1.json()["error"] and "no predict_proba" in v2.json()["error"]


def test_nan_goes_to_models_that_take_it(app_for: Callable[..., ServingApp]) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = np.random.default_rng(0).normal(size=(200, 3))
    X[::7, 1] = np.nan
    model = HistGradientBoostingRegressor(max_iter=10).fit(X, np.nan_to_num(X).sum(axis=1))
    app = app_for(model)
    rows = X[:10]
    # JSON cannot carry NaN; V2 FP16 can't either — a NaN only arrives via overflow-free paths,
    # so check the model path directly and that inf is still refused.
    assert app.model is not None
    app.model.check_rows(rows)
    with pytest.raises(RequestError, match="infinite"):
        app.model.check_rows(np.array([[1.0, np.inf, 2.0]]))


def test_unknown_model_and_version_are_404(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator)
    body = orjson.dumps({"instances": [[1, 2, 3, 4]]})
    for method, path in [
        ("POST", "/v1/models/other:predict"),
        ("GET", "/v1/models/other"),
        ("POST", "/v2/models/other/infer"),
        ("GET", "/v2/models/other/ready"),
        ("POST", "/v2/models/m/versions/9/infer"),
        ("POST", "/v1/models/m:explain"),
        ("GET", "/nowhere"),
        ("GET", "/v2/models/m/bogus"),
    ]:
        reply = call(app, method, path, body)
        assert reply.status == 404, (path, reply.body)
        assert reply.json()["error"]
    reply = call(app, "POST", "/v2/models/m/versions/1/infer", v2_body([[1, 2, 3, 4]]))
    assert reply.status == 200


def test_wrong_method_is_405_with_allow(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator)
    for method, path, allowed in [
        ("GET", V1, "POST"),
        ("PUT", V2, "POST"),
        ("POST", "/v2/health/ready", "GET"),
        ("DELETE", "/v1/models/m", "GET"),
        ("POST", "/metrics", "GET"),
    ]:
        reply = call(app, method, path)
        assert reply.status == 405, path
        assert reply.headers["allow"] == allowed
        assert method in reply.json()["error"]


def test_oversized_body_is_413(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, max_body_bytes=100)
    body = orjson.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 10})
    assert len(body) > 100
    reply = call(app, "POST", V1, body)
    assert reply.status == 413 and "100 bytes" in reply.json()["error"]
    # chunked (no content-length): counted as it arrives
    chunked = call(app, "POST", V2, chunks=[body[:60], body[60:120], body[120:]])
    assert chunked.status == 413
    small = orjson.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]})
    ok = call(app, "POST", V1, chunks=[small[:10], small[10:]])
    assert ok.status == 200


def test_readiness_is_false_until_the_model_is_loaded(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], tmp_path: Path
) -> None:
    settings = ServerSettings(model_dir=tmp_path, name="m")
    app = ServingApp(settings, ServingMetrics("m", "1"))
    assert call(app, "GET", "/v2/health/live").status == 200
    assert call(app, "GET", "/v2/health/ready").status == 503
    assert call(app, "GET", "/v2/models/m/ready").json() == {"name": "m", "ready": False}
    assert call(app, "GET", "/v1/models/m").status == 503
    not_ready = call(app, "POST", V1, orjson.dumps({"instances": [[1, 2, 3, 4]]}))
    assert not_ready.status == 503 and "loading" in not_ready.json()["error"]
    assert "modeldeploy_model_loaded{" in call(app, "GET", "/metrics").body.decode()
    loaded = app_for(models["logistic"].estimator)
    assert call(loaded, "GET", "/v2/health/ready").status == 200
    assert call(loaded, "GET", "/v2/models/m/ready").json() == {"name": "m", "ready": True}
    assert call(loaded, "GET", "/v1/models/m").json() == {"name": "m", "ready": True}


def test_the_root_answers_kserves_v1_liveness_check(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp], tmp_path: Path
) -> None:
    """KServe's V1 client, `InferenceRESTClient(RESTConfig(protocol="v1")).is_server_live(url)`
    (kserve/python/kserve/kserve/inference_client.py), GETs the base URL itself (`/`), raises on
    any non-2xx answer and returns `response.json().get("status").lower() == "alive"`. KServe's
    own server routes `/` to `DataPlane.live` (protocol/rest/server.py, GET only), which returns
    `{"status": "alive"}` whether or not a model is loaded (protocol/dataplane.py)."""
    loading = ServingApp(ServerSettings(model_dir=tmp_path, name="m"), ServingMetrics("m", "1"))
    loaded = app_for(models["logistic"].estimator)
    for app in (loading, loaded):
        reply = call(app, "GET", "/")
        assert reply.status == 200
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == {"status": "alive"}
        refused = call(app, "POST", "/")
        assert refused.status == 405 and refused.headers["allow"] == "GET"


def test_metadata(models: dict[str, Fitted], app_for: Callable[..., ServingApp]) -> None:
    app = app_for(models["pipeline"].estimator, version="7")
    meta = call(app, "GET", "/v2/models/m").json()
    assert meta["name"] == "m" and meta["versions"] == ["7"] and meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["outputs"][0]["datatype"] == "BYTES"
    assert meta["parameters"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert call(app, "GET", "/v2/models/m/versions/7").status == 200
    assert call(app, "GET", "/v2").json()["name"] == "modeldeploy"
    assert call(app, "GET", "/v1/models").json() == {"models": ["m"]}


def test_the_model_metadata_says_which_path_serves(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    iris = models["logistic"]
    served = [
        (app_for(iris.estimator), "fast"),  # a LogisticRegression has an exact fast path
        (app_for(models["pipeline"].estimator), "fast"),
        (app_for(iris.estimator, fast_path=False), "sklearn"),  # --no-fast-path
        (app_for(KNeighborsClassifier().fit(iris.X, iris.estimator.predict(iris.X))), "sklearn"),
    ]
    for app, path in served:
        assert app.model is not None and app.model.path == path
        meta = call(app, "GET", "/v2/models/m").json()
        assert meta["parameters"]["path"] == path
        assert call(app, "GET", "/v2/models/m/versions/1").json() == meta


def test_every_status_the_errors_use_is_counted() -> None:
    def subclasses(cls: type[RequestError]) -> list[type[RequestError]]:
        found = [cls]
        for child in cls.__subclasses__():
            found += subclasses(child)
        return found

    for cls in subclasses(RequestError):
        assert cls.status in RESPONSE_CODES, cls
