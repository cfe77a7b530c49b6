"""Fitted models of several kinds and model directories holding them, shared by serving tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.drift import Reference
from modeldeploy_serving.metrics import ServingMetrics
from modeldeploy_serving.model import ServedModel
from modeldeploy_serving.settings import ServerSettings
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Fitted:
    name: str
    estimator: Any
    X: np.ndarray


def _fit() -> dict[str, Fitted]:
    iris_X, iris_y = load_iris(return_X_y=True)
    diabetes_X, diabetes_y = load_diabetes(return_X_y=True)
    # String labels: the V2 predict output is then BYTES.
    names = np.array(["setosa", "versicolor", "virginica"])[iris_y]
    return {
        "logistic": Fitted(
            "logistic", LogisticRegression(max_iter=1000).fit(iris_X, iris_y), iris_X
        ),
        "ridge": Fitted("ridge", Ridge().fit(diabetes_X, diabetes_y), diabetes_X),
        "pipeline": Fitted(
            "pipeline",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(iris_X, names),
            iris_X,
        ),
        "forest": Fitted(
            "forest",
            RandomForestClassifier(n_estimators=10, random_state=0).fit(iris_X, iris_y),
            iris_X,
        ),
    }


_MODELS = _fit()


@pytest.fixture(scope="session")
def models() -> dict[str, Fitted]:
    return _MODELS


@pytest.fixture(params=sorted(_MODELS))
def fitted(request: pytest.FixtureRequest) -> Fitted:
    return _MODELS[request.param]


def save_model(estimator: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.joblib"
    joblib.dump(estimator, path)
    return path


def make_app(
    model_dir: Path,
    name: str = "m",
    version: str = "1",
    reference: Reference | None = None,
    **settings: Any,
) -> ServingApp:
    s = ServerSettings(model_dir=model_dir, name=name, version=version, **settings)
    metrics = ServingMetrics(name, version, drift_min_rows=settings.get("drift_min_rows", 100))
    return ServingApp(s, metrics, ServedModel.load(model_dir), reference)


@pytest.fixture
def app_for(tmp_path: Path) -> Callable[..., ServingApp]:
    def build(estimator: Any, **kwargs: Any) -> ServingApp:
        directory = tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
        save_model(estimator, directory)
        return make_app(directory, **kwargs)

    return build
