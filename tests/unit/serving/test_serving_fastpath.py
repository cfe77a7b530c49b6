"""The fast path in the server: chosen at load only when it matches scikit-learn, visible in
`modeldeploy_model_info{path}`, never reached by rows the input checks refuse, and never used for
what it does not cover (unknown estimators, rows that are not float64)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from modeldeploy_serving import model as model_module
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.drift import build_reference, save_reference
from modeldeploy_serving.fastpath import FastPath, Kernel, Unsupported, compile_estimator
from modeldeploy_serving.fastpath.verify import Mismatch, check_rows, verify
from modeldeploy_serving.metrics import ServingMetrics
from modeldeploy_serving.settings import ServerSettings, parse_settings
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from .asgi import acall, call
from .conftest import Fitted, save_model
from .test_serving_protocols import V1, V2, v2_body

IRIS_X, IRIS_Y = load_iris(return_X_y=True)


def info_line(app: ServingApp) -> str:
    text = call(app, "GET", "/metrics").body.decode()
    return next(line for line in text.splitlines() if line.startswith("modeldeploy_model_info{"))


class Spy:
    """Kernels that record the rows they are given, then compute the real answer."""

    def __init__(self, real: FastPath) -> None:
        self.calls: list[np.ndarray] = []
        self.real = real

    def wrap(self, kernel: Kernel) -> Kernel:
        def spied(rows: np.ndarray) -> np.ndarray:
            self.calls.append(rows)
            return kernel(rows)

        return spied

    def path(self) -> FastPath:
        proba = self.real.predict_proba
        return FastPath(
            self.wrap(self.real.predict),
            None if proba is None else self.wrap(proba),
            self.real.description,
        )


def test_a_supported_model_is_served_by_its_fast_path_and_says_so(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    for name in ("logistic", "ridge", "pipeline", "forest"):
        app = app_for(models[name].estimator)
        assert app.dataplane.require_model().path == "fast", name
        assert 'path="fast"' in info_line(app)
        rows = models[name].X[:5]
        reply = call(app, "POST", V1, orjson.dumps({"instances": rows.tolist()}))
        assert reply.json()["predictions"] == models[name].estimator.predict(rows).tolist()


def test_without_the_fast_path_scikit_learn_serves(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator, fast_path=False)
    assert app.dataplane.require_model().path == "sklearn"
    assert 'path="sklearn"' in info_line(app)


def test_the_flag_turns_it_off() -> None:
    assert parse_settings(["--model-dir", "m", "--name", "m"]).fast_path is True
    assert parse_settings(["--model-dir", "m", "--name", "m", "--no-fast-path"]).fast_path is False


@pytest.mark.parametrize(
    ("estimator", "reason"),
    [
        (KNeighborsClassifier(), "KNeighborsClassifier has no fast path"),
        (RandomForestClassifier(n_estimators=3, n_jobs=2), "n_jobs=2"),
        (
            make_pipeline(PolynomialFeatures(), LogisticRegression(max_iter=1000)),
            "PolynomialFeatures",
        ),
        (
            make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression(max_iter=1000)),
            "add_indicator",
        ),
        (
            make_pipeline(StandardScaler(), LogisticRegression()).set_output(transform="pandas"),
            "'pandas'",
        ),
        (
            make_pipeline(
                ColumnTransformer([("codes", OneHotEncoder(), [0, 1])], sparse_threshold=1.0),
                LogisticRegression(max_iter=1000),
            ),
            "sparse output",
        ),
    ],
    ids=[
        "unknown",
        "threaded-forest",
        "unknown-step",
        "imputer-indicator",
        "pandas-output",
        "sparse-columns",
    ],
)
def test_what_has_no_fast_path_is_served_by_scikit_learn_with_the_reason_logged(
    estimator: Any,
    reason: str,
    app_for: Callable[..., ServingApp],
    caplog: pytest.LogCaptureFixture,
) -> None:
    estimator.fit(IRIS_X, IRIS_Y)
    with pytest.raises(Unsupported, match=reason):
        compile_estimator(estimator)
    with caplog.at_level(logging.INFO, logger="modeldeploy_serving.model"):
        app = app_for(estimator)
    assert app.dataplane.require_model().path == "sklearn"
    assert 'path="sklearn"' in info_line(app)
    assert any("scikit-learn serves" in r.message and reason in r.message for r in caplog.records)
    reply = call(app, "POST", V1, orjson.dumps({"instances": IRIS_X[:3].tolist()}))
    assert reply.json()["predictions"] == estimator.predict(IRIS_X[:3]).tolist()


def test_a_fast_path_that_differs_from_scikit_learn_never_serves(
    models: dict[str, Fitted],
    app_for: Callable[..., ServingApp],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A kernel off by one unit in the last place, on probabilities only: refused, and why."""

    def off_by_one_ulp(estimator: Any) -> FastPath:
        real = compile_estimator(estimator)
        proba = real.predict_proba
        assert proba is not None
        return FastPath(real.predict, lambda rows: np.nextafter(proba(rows), 2.0), "nudged")

    monkeypatch.setattr(model_module, "compile_estimator", off_by_one_ulp)
    with caplog.at_level(logging.WARNING, logger="modeldeploy_serving.model"):
        app = app_for(models["logistic"].estimator)
    assert app.dataplane.require_model().path == "sklearn"
    assert any(
        "failed the check" in r.message and "predict_proba on 1 row(s)" in r.message
        for r in caplog.records
    )
    rows = models["logistic"].X[:4]
    body = orjson.dumps({"instances": rows.tolist(), "parameters": {"method": "predict_proba"}})
    got = np.asarray(call(app, "POST", V1, body).json()["predictions"])
    assert np.array_equal(got, models["logistic"].estimator.predict_proba(rows))


def test_bad_input_is_refused_before_the_fast_path_is_called(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    app = app_for(models["logistic"].estimator)
    model = app.dataplane.require_model()
    assert model.fast_path is not None
    spy = Spy(model.fast_path)
    model.fast_path = spy.path()
    refused = [
        orjson.dumps({"instances": [[1.0, 2.0, 3.0]]}),  # 3 features, the model takes 4
        b'{"instances": [[1.0, 2.0, NaN, 4.0]]}',
        b'{"instances": [[1.0, 2.0, "3", 4.0]]}',
        b'{"instances": []}',
    ]
    for body in refused:
        reply = call(app, "POST", V1, body)
        assert reply.status == 400, body
    v2_refused = call(app, "POST", V2, v2_body([[1.0, 2.0, 3.0]]))
    assert v2_refused.status == 400
    assert spy.calls == []
    # The spy is on the path requests take: a good one reaches it.
    assert call(app, "POST", V1, orjson.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]})).status == 200
    assert len(spy.calls) == 1


def test_an_unknown_category_is_a_400_as_with_scikit_learn(
    app_for: Callable[..., ServingApp],
) -> None:
    """Mixed input: two numeric features, then a category code; OneHotEncoder refuses codes it
    never saw, on the fast path as in scikit-learn."""
    codes = (np.arange(len(IRIS_X)) % 3).astype(np.float64)
    X = np.column_stack([IRIS_X[:, :2], codes])
    estimator = make_pipeline(
        ColumnTransformer(
            [("numeric", StandardScaler(), [0, 1]), ("code", OneHotEncoder(), [2])],
            sparse_threshold=0.0,
        ),
        LogisticRegression(max_iter=1000),
    ).fit(X, IRIS_Y)
    for fast_path in (True, False):
        app = app_for(estimator, fast_path=fast_path)
        assert app.dataplane.require_model().path == ("fast" if fast_path else "sklearn")
        known = call(app, "POST", V1, orjson.dumps({"instances": X[:3].tolist()}))
        assert known.json()["predictions"] == estimator.predict(X[:3]).tolist()
        unknown = call(app, "POST", V1, orjson.dumps({"instances": [[5.0, 3.0, 7.0]]}))
        assert unknown.status == 400
        assert "unknown categories [np.float64(7.0)] in column 0" in unknown.json()["error"]


def test_rows_that_are_not_float64_go_to_scikit_learn(
    models: dict[str, Fitted], app_for: Callable[..., ServingApp]
) -> None:
    """A V2 FP32 tensor: scikit-learn's own conversions apply, so the fast path stays out."""
    app = app_for(models["forest"].estimator)
    model = app.dataplane.require_model()
    assert model.fast_path is not None
    spy = Spy(model.fast_path)
    model.fast_path = spy.path()
    rows = models["forest"].X[:6].astype(np.float32)
    reply = call(app, "POST", V2, v2_body(rows.tolist(), datatype="FP32"))
    assert reply.status == 200
    assert reply.json()["outputs"][0]["data"] == models["forest"].estimator.predict(rows).tolist()
    assert spy.calls == []
    call(app, "POST", V2, v2_body(rows.astype(np.float64).tolist(), datatype="FP64"))
    assert len(spy.calls) == 1


def test_at_load_the_check_uses_the_drift_reference(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The production path: loaded in a thread by `start_loading`, checked on rows built from
    `reference.json` next to the model."""
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    save_model(estimator.fit(IRIS_X, IRIS_Y), tmp_path)
    save_reference(build_reference(IRIS_X, ["a", "b", "c", "d"]), tmp_path)
    app = ServingApp(ServerSettings(model_dir=tmp_path, name="m"), ServingMetrics("m", "1"))

    async def load_then_predict() -> Any:
        app.dataplane.start_loading()
        while not app.dataplane.ready:
            await asyncio.sleep(0.01)
        return await acall(app, "POST", V1, orjson.dumps({"instances": IRIS_X[:2].tolist()}))

    with caplog.at_level(logging.INFO, logger="modeldeploy_serving.model"):
        reply = asyncio.run(load_then_predict())
    assert reply.json()["predictions"] == estimator.predict(IRIS_X[:2]).tolist()
    assert app.dataplane.require_model().path == "fast"
    assert any("from the drift reference" in r.message for r in caplog.records)


def test_check_rows_cross_every_reference_edge() -> None:
    edges = ((0.0, 1.0, 5.0), (-2.0, 2.0))
    rows = check_rows(2, edges, allow_nan=False)
    assert rows.dtype == np.float64 and rows.flags.c_contiguous
    for j, column_edges in enumerate(edges):
        column = set(rows[:, j].tolist())
        assert set(column_edges) <= column
        midpoints = {(a + b) / 2 for a, b in itertools.pairwise(column_edges)}
        assert midpoints <= column
        span = column_edges[-1] - column_edges[0]
        assert {column_edges[0] - span, column_edges[-1] + span} <= column
    assert not np.isnan(rows).any()


def test_check_rows_are_generated_without_a_fitting_reference() -> None:
    for edges in (None, ((0.0, 1.0),)):  # none, or one for another feature count
        rows = check_rows(3, edges, allow_nan=True)
        assert rows.shape[1] == 3 and len(rows) >= 32
        assert np.isnan(rows).any() and np.isfinite(rows).any()
        assert np.abs(rows[np.isfinite(rows)]).max() > 100  # several magnitudes


def test_the_check_compares_refusals_and_needs_something_accepted() -> None:
    """A kernel must refuse what scikit-learn refuses (same exception type), and rows that
    scikit-learn refuses all of prove nothing."""
    codes = (np.arange(len(IRIS_X)) % 3).astype(np.float64)
    X = np.column_stack([IRIS_X[:, 0], codes])
    estimator = make_pipeline(
        ColumnTransformer([("code", OneHotEncoder(), [1])], remainder="passthrough"),
        LogisticRegression(max_iter=1000),
    ).fit(X, IRIS_Y)
    real = compile_estimator(estimator)
    mixed = np.array([[5.0, 0.0], [5.0, 9.0], [6.0, 2.0], [4.0, 1.0]])
    verify(real, estimator, mixed)  # row 1 is refused by both, the others are compared

    lenient = FastPath(lambda rows: np.zeros(len(rows), dtype=IRIS_Y.dtype), None, "lenient")
    with pytest.raises(Mismatch, match="answers where scikit-learn raises ValueError"):
        verify(lenient, estimator, mixed)
    with pytest.raises(Mismatch, match="refused every check batch"):
        verify(real, estimator, np.array([[5.0, 9.0], [5.0, 8.0]]))
