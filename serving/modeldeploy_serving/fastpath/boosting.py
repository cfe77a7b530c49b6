"""Gradient boosting: scikit-learn's own compiled stage kernels, without the per-call checks.

Mirrors scikit-learn 1.9.1's `GradientBoostingClassifier` / `Regressor` (sklearn/ensemble/_gb.py:
rows as a C-ordered float32 array, `_init_raw_predictions` of the init estimator, or zeros, then
`predict_stages`) and `HistGradientBoostingClassifier` / `Regressor`
(sklearn/ensemble/_hist_gradient_boosting/gradient_boosting.py: `_raw_predict` on float64 rows,
each iteration's predictors added in order, then the loss's inverse link or `predict_proba`).
The init estimator and the losses are scikit-learn's objects, called as scikit-learn calls them.
Histogram boosting with categorical features (an internal ColumnTransformer) is not compiled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.ensemble._gb import _init_raw_predictions
from sklearn.ensemble._gradient_boosting import predict_stages
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from modeldeploy_serving.fastpath import FastPath, Kernel, Unsupported

# From this many rows on, OpenMP threads pay for their start (measured on 2 cores: 1,000 rows
# 1.7x faster on 2 threads, 1 to 32 rows 10-15 % slower); below it one thread predicts. Rows are
# independent of each other in these kernels, so the thread count cannot change a bit.
THREADED_ROWS = 256

GRADIENT_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)
HIST_GRADIENT_BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
SUPPORTED = frozenset((*GRADIENT_BOOSTING, *HIST_GRADIENT_BOOSTING))


def compile_estimator(estimator: Any) -> FastPath:
    if isinstance(estimator, GRADIENT_BOOSTING):
        raw = _gradient_boosting_raw(estimator)
    else:
        raw = _hist_gradient_boosting_raw(estimator)
    name = type(estimator).__name__
    loss = estimator._loss
    if isinstance(estimator, GradientBoostingRegressor):
        return FastPath(lambda rows: raw(rows).ravel(), None, name)
    if isinstance(estimator, HistGradientBoostingRegressor):
        return FastPath(lambda rows: loss.link.inverse(raw(rows).ravel()), None, name)
    classes = estimator.classes_
    # `>= 0` for GradientBoosting, `> 0` for HistGradientBoosting: each as scikit-learn has it.
    strict = isinstance(estimator, HistGradientBoostingClassifier)

    def decision(rows: np.ndarray) -> np.ndarray:
        scores = raw(rows)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(rows: np.ndarray) -> np.ndarray:
        scores = decision(rows)
        if scores.ndim == 1:
            encoded = (scores > 0 if strict else scores >= 0).astype(int)
        else:
            encoded = scores.argmax(axis=1)
        labels: np.ndarray = classes[encoded]
        return labels

    if strict:
        # HistGradientBoostingClassifier.predict_proba hands the loss the 2-D raw predictions.
        return FastPath(predict, lambda rows: loss.predict_proba(raw(rows)), name)
    return FastPath(predict, lambda rows: loss.predict_proba(decision(rows)), name)


def _gradient_boosting_raw(estimator: Any) -> Kernel:
    """`BaseGradientBoosting._raw_predict` on rows as `validate_data(dtype=float32, order="C")`
    makes them."""
    init = estimator.init_
    if not (isinstance(init, str) and init == "zero") and type(init) not in (
        DummyClassifier,
        DummyRegressor,
    ):
        # Another init estimator would be called with its own checks: no gain, more to trust.
        raise Unsupported(f"{type(estimator).__name__} with init={type(init).__name__}")
    stages = estimator.estimators_
    scale = estimator.learning_rate
    loss = estimator._loss
    n_columns = estimator.n_trees_per_iteration_
    use_proba = isinstance(estimator, GradientBoostingClassifier)

    def raw(rows: np.ndarray) -> np.ndarray:
        features = np.asarray(rows, dtype=np.float32, order="C")
        if isinstance(init, str):
            scores = np.zeros(shape=(features.shape[0], n_columns), dtype=np.float64)
        else:
            scores = _init_raw_predictions(features, init, loss, use_proba)
        predict_stages(stages, features, scale, scores)
        return scores

    return raw


def _hist_gradient_boosting_raw(estimator: Any) -> Kernel:
    """`BaseHistGradientBoosting._raw_predict` on float64 rows (its X_DTYPE), not binned."""
    if estimator._preprocessor is not None:
        raise Unsupported(f"{type(estimator).__name__} with categorical features")
    known_cat_bitsets, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
    baseline = estimator._baseline_prediction
    iterations = estimator._predictors
    n_columns = estimator.n_trees_per_iteration_
    all_threads = _openmp_effective_n_threads(None)

    def raw(rows: np.ndarray) -> np.ndarray:
        n_threads = all_threads if rows.shape[0] >= THREADED_ROWS else 1
        scores = np.zeros(shape=(rows.shape[0], n_columns), dtype=baseline.dtype, order="F")
        scores += baseline
        for predictors in iterations:
            for k, predictor in enumerate(predictors):
                scores[:, k] += predictor.predict(rows, known_cat_bitsets, f_idx_map, n_threads)
        return scores

    return raw
