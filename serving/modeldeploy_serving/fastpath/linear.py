"""Linear models: `X @ coef_.T + intercept_` and what scikit-learn 1.9.1 does with the scores.

Mirrors `LinearClassifierMixin.decision_function` / `predict` / `_predict_proba_lr`,
`LogisticRegression.predict_proba` (expit when binary, `extmath.softmax` otherwise),
`SGDClassifier.predict_proba` (log_loss, modified_huber), `LinearModel._decision_function`
and `BaseSGDRegressor._decision_function` (sklearn/linear_model/_base.py, _logistic.py,
_stochastic_gradient.py). The coefficient arrays are the estimator's own (not copies), so each
product is the very BLAS call scikit-learn makes on the same memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from modeldeploy_serving.fastpath import FastPath, Kernel, Unsupported, require_dense

CLASSIFIERS = (LogisticRegression, SGDClassifier, LinearSVC, RidgeClassifier)
REGRESSORS = (LinearRegression, Ridge, SGDRegressor, LinearSVR)
SUPPORTED = frozenset((*CLASSIFIERS, *REGRESSORS))


def compile_estimator(estimator: Any) -> FastPath:
    name = type(estimator).__name__
    require_dense(name, coef_=estimator.coef_)
    if isinstance(estimator, CLASSIFIERS):
        return _classifier(estimator, name)
    if isinstance(estimator, SGDRegressor):
        # BaseSGDRegressor._decision_function: `(X @ coef_.T + intercept_).ravel()`.
        coef_t, intercept = estimator.coef_.T, estimator.intercept_

        def sgd_predict(rows: np.ndarray) -> np.ndarray:
            scores: np.ndarray = rows @ coef_t + intercept
            return scores.ravel()

        return FastPath(sgd_predict, None, name)
    # LinearModel._decision_function: the 1-D coefficients are not transposed.
    coef = estimator.coef_
    weights = coef if coef.ndim == 1 else coef.T
    offset = estimator.intercept_

    def predict(rows: np.ndarray) -> np.ndarray:
        result: np.ndarray = rows @ weights + offset
        return result

    return FastPath(predict, None, name)


def _classifier(estimator: Any, name: str) -> FastPath:
    if isinstance(estimator, RidgeClassifier) and estimator._label_binarizer.y_type_.startswith(
        "multilabel"
    ):
        raise Unsupported(f"{name} fitted on multilabel targets")
    coef = estimator.coef_
    coef_t = coef.T if coef.ndim == 2 else coef
    intercept = estimator.intercept_
    classes = estimator.classes_

    def decision_function(rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = rows @ coef_t + intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            return scores.reshape((-1,))
        return scores

    def predict(rows: np.ndarray) -> np.ndarray:
        scores = decision_function(rows)
        indices = (scores > 0).astype(np.int64) if len(scores.shape) == 1 else scores.argmax(axis=1)
        labels: np.ndarray = classes.take(indices, axis=0)
        return labels

    return FastPath(predict, _proba_kernel(estimator, decision_function), name)


def _proba_kernel(estimator: Any, decision_function: Kernel) -> Kernel | None:
    """The `predict_proba` of the linear classifier, or None when it has none."""
    if isinstance(estimator, LogisticRegression):
        if np.size(estimator.classes_) <= 2:
            return lambda rows: _ovr_probabilities(decision_function(rows))
        return lambda rows: _softmax(decision_function(rows))
    if isinstance(estimator, SGDClassifier):
        if estimator.loss == "log_loss":
            return lambda rows: _ovr_probabilities(decision_function(rows))
        if estimator.loss == "modified_huber":
            n_classes = len(estimator.classes_)
            return lambda rows: _modified_huber_probabilities(decision_function(rows), n_classes)
    return None


def _ovr_probabilities(prob: np.ndarray) -> np.ndarray:
    """`LinearClassifierMixin._predict_proba_lr` after its `decision_function`."""
    prob = expit(prob, out=prob)
    if prob.ndim == 1:
        return np.stack([1 - prob, prob], axis=1)
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if np.any(all_zero):
        prob[all_zero, :] = 1
        prob_sum[all_zero] = prob.shape[1]
    prob /= np.reshape(prob_sum, (prob.shape[0], -1))
    return prob


def _softmax(scores: np.ndarray) -> np.ndarray:
    """`sklearn.utils.extmath.softmax(scores, copy=False)`, its numpy branch."""
    max_prob = np.reshape(np.max(scores, axis=1), (-1, 1))
    scores -= max_prob
    np.exp(scores, out=scores)
    sum_prob = np.reshape(np.sum(scores, axis=1), (-1, 1))
    scores /= sum_prob
    return scores


def _modified_huber_probabilities(scores: np.ndarray, n_classes: int) -> np.ndarray:
    """`SGDClassifier.predict_proba` with loss="modified_huber", after `decision_function`."""
    binary = n_classes == 2
    if binary:
        prob2 = np.ones((scores.shape[0], 2))
        prob = prob2[:, 1]
    else:
        prob = scores
    np.clip(scores, -1, 1, prob)
    prob += 1.0
    prob /= 2.0
    if binary:
        prob2[:, 0] -= prob
        return prob2
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if np.any(all_zero):
        prob[all_zero, :] = 1
        prob_sum[all_zero] = n_classes
    prob /= prob_sum.reshape((prob.shape[0], -1))
    return prob
