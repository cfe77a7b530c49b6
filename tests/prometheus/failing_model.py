"""A classifier whose `predict` crashes: the model server answers 500 for every prediction.

It lives in an importable module because the server unpickles it by reference
(`tests.prometheus.failing_model.ExplodingClassifier`); the server runs from the repository root.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ExplodingClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fits like any classifier; fails on every prediction with an error that is not the
    caller's fault (not a ValueError/TypeError, which the server reports as 400)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> ExplodingClassifier:
        self.classes_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        raise RuntimeError("the model's feature store is unreachable")
