"""Property: for random fitted models of every supported kind and random rows, the fast path's
`predict` and `predict_proba` are the very bits scikit-learn returns (same dtype, same shape,
same bytes). scikit-learn is called directly, with its validation, as the oracle."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from modeldeploy_serving.fastpath import compile_estimator
from modeldeploy_serving.fastpath.boosting import THREADED_ROWS
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC, LinearSVR
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Factory = Callable[[int], Any]

LINEAR_CLASSIFIERS: list[Factory] = [
    lambda seed: LogisticRegression(max_iter=50),
    lambda seed: LogisticRegression(C=0.01, fit_intercept=False),
    lambda seed: SGDClassifier(loss="log_loss", max_iter=20, random_state=seed),
    lambda seed: SGDClassifier(loss="modified_huber", max_iter=20, random_state=seed),
    lambda seed: SGDClassifier(loss="hinge", max_iter=20, random_state=seed),
    lambda seed: LinearSVC(max_iter=200, random_state=seed),
    lambda seed: RidgeClassifier(alpha=0.5),
]
LINEAR_REGRESSORS: list[Factory] = [
    lambda seed: LinearRegression(),
    lambda seed: LinearRegression(fit_intercept=False),
    lambda seed: Ridge(alpha=2.0),
    lambda seed: SGDRegressor(max_iter=20, random_state=seed),
    lambda seed: LinearSVR(max_iter=200, random_state=seed),
]
TREE_CLASSIFIERS: list[Factory] = [
    lambda seed: DecisionTreeClassifier(random_state=seed),
    lambda seed: DecisionTreeClassifier(max_depth=3, random_state=seed),
    lambda seed: ExtraTreeClassifier(random_state=seed),
    lambda seed: RandomForestClassifier(n_estimators=7, random_state=seed),
    lambda seed: RandomForestClassifier(n_estimators=5, max_depth=4, random_state=seed),
    lambda seed: ExtraTreesClassifier(n_estimators=6, random_state=seed),
]
TREE_REGRESSORS: list[Factory] = [
    lambda seed: DecisionTreeRegressor(random_state=seed),
    lambda seed: ExtraTreeRegressor(random_state=seed),
    lambda seed: RandomForestRegressor(n_estimators=7, random_state=seed),
    lambda seed: ExtraTreesRegressor(n_estimators=5, max_depth=5, random_state=seed),
]
BOOSTED_CLASSIFIERS: list[Factory] = [
    lambda seed: GradientBoostingClassifier(n_estimators=8, random_state=seed),
    lambda seed: GradientBoostingClassifier(n_estimators=5, init="zero", random_state=seed),
    lambda seed: GradientBoostingClassifier(n_estimators=5, subsample=0.7, random_state=seed),
    lambda seed: HistGradientBoostingClassifier(max_iter=8, random_state=seed),
    lambda seed: HistGradientBoostingClassifier(max_iter=5, max_depth=2, random_state=seed),
]
BOOSTED_REGRESSORS: list[Factory] = [
    lambda seed: GradientBoostingRegressor(n_estimators=8, random_state=seed),
    lambda seed: GradientBoostingRegressor(n_estimators=5, loss="huber", random_state=seed),
    lambda seed: HistGradientBoostingRegressor(max_iter=8, random_state=seed),
    lambda seed: HistGradientBoostingRegressor(max_iter=5, loss="absolute_error"),
]
PREPROCESSORS: list[Factory] = [
    lambda seed: StandardScaler(),
    lambda seed: StandardScaler(with_mean=False),
    lambda seed: StandardScaler(with_std=False),
    lambda seed: MinMaxScaler(),
    lambda seed: MinMaxScaler(feature_range=(-1, 3), clip=True),
    lambda seed: SimpleImputer(),
    lambda seed: SimpleImputer(strategy="median"),
    lambda seed: SimpleImputer(strategy="most_frequent"),
    lambda seed: SimpleImputer(strategy="constant", fill_value=-7.5),
]


@st.composite
def training_sets(
    draw: st.DrawFn, task: str, missing: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """Random training data: X (float64), y (labels or targets), and a seed for the model."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_samples = draw(st.integers(12, 60))
    n_features = draw(st.integers(1, 6))
    X = rng.standard_normal((n_samples, n_features)) * draw(st.sampled_from([1e-3, 1.0, 250.0]))
    if missing:
        X[rng.random(X.shape) < 0.15] = np.nan
        X[0] = rng.standard_normal(n_features)  # every column observed at least once
    if task == "classification":
        n_classes = draw(st.integers(2, 4))
        codes = np.arange(n_samples) % n_classes
        rng.shuffle(codes)
        kind = draw(st.sampled_from(["int", "str", "float"]))
        labels: Any = {
            "int": np.array([3, -1, 10, 7])[:n_classes],
            "str": np.array(["setosa", "b", "virginica", "d"])[:n_classes],
            "float": np.array([0.0, 1.0, -2.0, 9.0])[:n_classes],
        }[kind]
        y = labels[codes]
    else:
        y = np.nan_to_num(X) @ rng.standard_normal(n_features) + rng.standard_normal(n_samples)
    return X, y, seed


@st.composite
def rows_for(draw: st.DrawFn, X: np.ndarray, missing: bool = False) -> np.ndarray:
    """Rows to predict: training rows (exactly, or scaled a little) and arbitrary numbers."""
    n_features = X.shape[1]
    picks = draw(st.lists(st.integers(0, len(X) - 1), max_size=20))
    factor = draw(st.sampled_from([1.0, 1.0 + 1e-9, 0.5, -1.0]))
    near = np.nan_to_num(X[picks]) * factor
    arbitrary = draw(
        hnp.arrays(
            np.float64,
            (draw(st.integers(0 if picks else 1, 12)), n_features),
            elements=st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1.0]),
        )
    )
    rows = np.concatenate([near, arbitrary]).astype(np.float64)
    if missing:
        mask = draw(hnp.arrays(np.bool_, rows.shape))
        rows[mask] = np.nan
    return np.ascontiguousarray(rows)


def fit(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny random problems
        return estimator.fit(X, y)


def assert_same_bits(got: Any, expected: Any) -> None:
    assert isinstance(got, np.ndarray)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if expected.dtype.kind in "biuf":
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes()
    else:
        assert np.array_equal(got, expected)


def assert_identical(estimator: Any, rows: np.ndarray) -> None:
    fast = compile_estimator(estimator)
    assert_same_bits(fast.predict(rows.copy()), estimator.predict(rows.copy()))
    if fast.predict_proba is not None:
        assert_same_bits(fast.predict_proba(rows.copy()), estimator.predict_proba(rows.copy()))
    elif hasattr(estimator, "predict_proba"):
        raise AssertionError(f"{type(estimator).__name__} has predict_proba and none compiled")


@PROPERTY_SETTINGS
@given(data=st.data(), make=st.sampled_from(LINEAR_CLASSIFIERS))
def test_linear_classifiers_are_bit_identical(data: st.DataObject, make: Factory) -> None:
    X, y, seed = data.draw(training_sets("classification"))
    estimator = fit(make(seed), X, y)
    assert_identical(estimator, data.draw(rows_for(X)))


@PROPERTY_SETTINGS
@given(data=st.data(), make=st.sampled_from(LINEAR_REGRESSORS))
def test_linear_regressors_are_bit_identical(data: st.DataObject, make: Factory) -> None:
    X, y, seed = data.draw(training_sets("regression"))
    estimator = fit(make(seed), X, y)
    assert_identical(estimator, data.draw(rows_for(X)))


@PROPERTY_SETTINGS
@given(data=st.data(), make=st.sampled_from(TREE_CLASSIFIERS), missing=st.booleans())
def test_trees_and_forests_classifying_are_bit_identical(
    data: st.DataObject, make: Factory, missing: bool
) -> None:
    X, y, seed = data.draw(training_sets("classification", missing))
    estimator = fit(make(seed), X, y)
    assert_identical(estimator, data.draw(rows_for(X, missing)))


@PROPERTY_SETTINGS
@given(data=st.data(), make=st.sampled_from(TREE_REGRESSORS), missing=st.booleans())
def test_trees_and_forests_regressing_are_bit_identical(
    data: st.DataObject, make: Factory, missing: bool
) -> None:
    X, y, seed = data.draw(training_sets("regression", missing))
    estimator = fit(make(seed), X, y)
    assert_identical(estimator, data.draw(rows_for(X, missing)))


@PROPERTY_SETTINGS
@given(data=st.data(), make=st.sampled_from(BOOSTED_CLASSIFIERS))
def test_gradient_boosting_classifiers_are_bit_identical(
    data: st.DataObject, make: Factory
) -> None:
    # Histogram boosting takes missing values; the classic one does not.
    estimator = make(0)
    missing = isinstance(estimator, HistGradientBoostingClassifier) and data.draw(st.booleans())
    X, y, seed = data.draw(training_sets("classification", missing))
    estimator = fit(estimator.set_params(random_state=seed), X, y)
    assert_identical(estimator, data.draw(rows_for(X, missing)))


@PROPERTY_SETTINGS
@given(data=st.data(), make=st.sampled_from(BOOSTED_REGRESSORS))
def test_gradient_boosting_regressors_are_bit_identical(data: st.DataObject, make: Factory) -> None:
    estimator = make(0)
    missing = isinstance(estimator, HistGradientBoostingRegressor) and data.draw(st.booleans())
    X, y, seed = data.draw(training_sets("regression", missing))
    estimator = fit(estimator.set_params(random_state=seed), X, y)
    assert_identical(estimator, data.draw(rows_for(X, missing)))


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    steps=st.lists(st.sampled_from(PREPROCESSORS), min_size=1, max_size=3),
    final=st.sampled_from(LINEAR_CLASSIFIERS + TREE_CLASSIFIERS + BOOSTED_CLASSIFIERS),
    passthrough=st.booleans(),
)
def test_pipelines_are_bit_identical(
    data: st.DataObject, steps: list[Factory], final: Factory, passthrough: bool
) -> None:
    seed = data.draw(st.integers(0, 2**31 - 1))
    named: list[tuple[str, Any]] = [(f"step{i}", make(seed)) for i, make in enumerate(steps)]
    # An imputer first takes missing values away; without one the rows are complete.
    missing = isinstance(named[0][1], SimpleImputer)
    X, y, _ = data.draw(training_sets("classification", missing))
    if passthrough:
        named.insert(1, ("skipped", "passthrough"))
    pipeline = fit(Pipeline([*named, ("final", final(seed))]), X, y)
    assert_identical(pipeline, data.draw(rows_for(X, missing)))


@PROPERTY_SETTINGS
@given(data=st.data(), steps=st.lists(st.sampled_from(PREPROCESSORS[:5]), min_size=1, max_size=2))
def test_regression_pipelines_are_bit_identical(data: st.DataObject, steps: list[Factory]) -> None:
    X, y, seed = data.draw(training_sets("regression"))
    named = [(f"step{i}", make(seed)) for i, make in enumerate(steps)]
    pipeline = fit(Pipeline([*named, ("final", Ridge())]), X, y)
    assert_identical(pipeline, data.draw(rows_for(X)))


@st.composite
def mixed_training_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Numeric columns, then categorical ones as numeric codes (as JSON rows carry them)."""
    X, y, seed = draw(training_sets("classification"))
    rng = np.random.default_rng(seed)
    n_categorical = draw(st.integers(1, 3))
    levels = draw(
        st.sampled_from([np.arange(4.0), np.array([-1.0, 0.0, 2.5]), np.arange(1.0, 9.0)])
    )
    codes = rng.choice(levels, size=(len(X), n_categorical))
    return np.hstack([X, codes]), y, seed, X.shape[1]


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    handle_unknown=st.sampled_from(["error", "ignore"]),
    remainder=st.sampled_from(["drop", "passthrough"]),
    by_mask=st.booleans(),
    weighted=st.booleans(),
    final=st.sampled_from(LINEAR_CLASSIFIERS + TREE_CLASSIFIERS + BOOSTED_CLASSIFIERS),
)
def test_column_transformer_pipelines_are_bit_identical(
    data: st.DataObject,
    handle_unknown: str,
    remainder: str,
    by_mask: bool,
    weighted: bool,
    final: Factory,
) -> None:
    X, y, seed, n_numeric = data.draw(mixed_training_sets())
    n_features = X.shape[1]
    scaled = list(range(n_numeric - 1)) if remainder == "passthrough" else list(range(n_numeric))
    categorical: Any = list(range(n_numeric, n_features))
    if by_mask:
        categorical = np.arange(n_features) >= n_numeric
    encoder = OneHotEncoder(handle_unknown=handle_unknown, sparse_output=data.draw(st.booleans()))
    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), scaled),
            ("categorical", encoder, categorical),
        ],
        remainder=remainder,
        sparse_threshold=0.0,
        transformer_weights={"numeric": 0.5} if weighted else None,
    )
    pipeline = fit(Pipeline([("columns", columns), ("final", final(seed))]), X, y)
    rows = data.draw(rows_for(X))
    # Training rows carry known categories, arbitrary rows unknown ones: make some known.
    rows[:, n_numeric:] = np.where(
        data.draw(hnp.arrays(np.bool_, (len(rows), n_features - n_numeric))),
        X[0, n_numeric:],
        rows[:, n_numeric:],
    )
    fast = compile_estimator(pipeline)
    try:
        expected = pipeline.predict(rows.copy())
    except ValueError as e:
        assert handle_unknown == "error" and "unknown categories" in str(e)
        with pytest.raises(ValueError, match="unknown categories"):
            fast.predict(rows.copy())
        return
    assert_same_bits(fast.predict(rows.copy()), expected)
    assert_identical(pipeline, rows)


def test_hist_gradient_boosting_is_bit_identical_on_batches_big_enough_for_threads() -> None:
    """From THREADED_ROWS rows on, the kernel predicts on OpenMP threads, as scikit-learn does."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((400, 5))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X) @ rng.standard_normal(5) > 0).astype(int) + (X[:, 0] > 1)
    for estimator in (
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        HistGradientBoostingRegressor(max_iter=20, random_state=0),
    ):
        fit(estimator, X, y)
        assert_identical(estimator, rng.standard_normal((THREADED_ROWS + 50, 5)))
