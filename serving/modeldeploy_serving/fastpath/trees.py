"""Decision trees and their forests: each tree's own compiled `tree_.predict`, summed in order.

Mirrors scikit-learn 1.9.1's `BaseDecisionTree.predict`, `DecisionTreeClassifier.predict_proba`
(sklearn/tree/_classes.py) and `ForestClassifier.predict_proba` / `.predict`,
`ForestRegressor.predict` (sklearn/ensemble/_forest.py): the rows become float32 as
`validate_data(dtype=np.float32)` makes them, every tree's output is added into a float64
zero array in `estimators_` order (what `_accumulate_prediction` does when `n_jobs` is 1), and
the sum is divided by the number of trees. With `n_jobs` other than 1, scikit-learn adds the
trees in whichever order its threads finish, so it cannot be reproduced: such forests are not
compiled. Single-output models only (multi-output classifiers are refused at load anyway).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from modeldeploy_serving.fastpath import FastPath, Kernel, Unsupported

TREE_CLASSIFIERS = (DecisionTreeClassifier, ExtraTreeClassifier)
TREE_REGRESSORS = (DecisionTreeRegressor, ExtraTreeRegressor)
FOREST_CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier)
FOREST_REGRESSORS = (RandomForestRegressor, ExtraTreesRegressor)
SUPPORTED = frozenset(
    (*TREE_CLASSIFIERS, *TREE_REGRESSORS, *FOREST_CLASSIFIERS, *FOREST_REGRESSORS)
)


def compile_estimator(estimator: Any) -> FastPath:
    name = type(estimator).__name__
    if estimator.n_outputs_ != 1:
        raise Unsupported(f"{name} has {estimator.n_outputs_} outputs; only one is compiled")
    if isinstance(estimator, TREE_CLASSIFIERS):
        proba = _tree_proba(estimator)
        classes = estimator.classes_
        return FastPath(lambda rows: _labels(classes, proba(rows)), proba, name)
    if isinstance(estimator, TREE_REGRESSORS):
        return FastPath(_tree_values(estimator), None, name)
    n_jobs = estimator.n_jobs
    if n_jobs not in (None, 1):
        raise Unsupported(
            f"{name} has n_jobs={n_jobs}: scikit-learn sums its trees in the order its threads "
            "finish, which no fast path can reproduce (refit or set n_jobs=None to compile it)"
        )
    if isinstance(estimator, FOREST_CLASSIFIERS):
        forest_proba = _forest_proba(estimator)
        classes = estimator.classes_
        return FastPath(lambda rows: _labels(classes, forest_proba(rows)), forest_proba, name)
    return FastPath(_forest_values(estimator), None, name)


def _labels(classes: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """`classes_.take(np.argmax(proba, axis=1), axis=0)`, as every classifier here predicts."""
    labels: np.ndarray = classes.take(proba.argmax(axis=1), axis=0)
    return labels


def _tree_proba(tree: Any) -> Kernel:
    """`DecisionTreeClassifier.predict_proba`: the leaf values, cut to `n_classes_` columns."""
    predict_leaves = tree.tree_.predict
    n_classes = tree.n_classes_

    def proba(rows: np.ndarray) -> np.ndarray:
        result: np.ndarray = predict_leaves(rows.astype(np.float32))[:, :n_classes]
        return result

    return proba


def _tree_values(tree: Any) -> Kernel:
    """`DecisionTreeRegressor.predict` with one output: the first column of the leaf values."""
    predict_leaves = tree.tree_.predict

    def values(rows: np.ndarray) -> np.ndarray:
        result: np.ndarray = predict_leaves(rows.astype(np.float32))[:, 0]
        return result

    return values


def _forest_proba(forest: Any) -> Kernel:
    leaf_predictors = [(tree.tree_.predict, tree.n_classes_) for tree in forest.estimators_]
    n_classes = int(forest.n_classes_)
    n_trees = len(forest.estimators_)

    def proba(rows: np.ndarray) -> np.ndarray:
        features = rows.astype(np.float32)
        total = np.zeros((features.shape[0], n_classes), dtype=np.float64)
        for predict_leaves, tree_classes in leaf_predictors:
            total += predict_leaves(features)[:, :tree_classes]
        total /= n_trees
        return total

    return proba


def _forest_values(forest: Any) -> Kernel:
    leaf_predictors = [tree.tree_.predict for tree in forest.estimators_]
    n_trees = len(forest.estimators_)

    def values(rows: np.ndarray) -> np.ndarray:
        features = rows.astype(np.float32)
        total = np.zeros(features.shape[0], dtype=np.float64)
        for predict_leaves in leaf_predictors:
            total += predict_leaves(features)[:, 0]
        total /= n_trees
        return total

    return values
