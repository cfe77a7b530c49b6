"""Finding, pinning and loading the artifact; describing the model."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from modeldeploy_serving.errors import BadRequest, DigestMismatch, ModelLoadError
from modeldeploy_serving.model import (
    SMALL_BATCH_VALUES,
    ServedModel,
    locate_artifact,
    normalize_sha256,
    verify_sha256,
)

from .conftest import Fitted, save_model


def test_sha256_pin(models: dict[str, Fitted], tmp_path: Path) -> None:
    path = save_model(models["logistic"].estimator, tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert verify_sha256(path, digest.upper()) == digest
    assert verify_sha256(path, f"sha256:{digest}") == digest
    model = ServedModel.load(tmp_path, digest)
    assert model.sha256 == digest
    wrong = "0" * 64
    with pytest.raises(DigestMismatch) as info:
        ServedModel.load(tmp_path, wrong)
    assert digest in str(info.value) and wrong in str(info.value)
    with pytest.raises(ValueError, match="64 hex"):
        normalize_sha256("abc")


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_the_pinned_bytes_are_the_bytes_loaded(
    models: dict[str, Fitted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """On a shared (RWX) volume a writer can replace the file between two reads of its path:
    whenever the artifact is read again after the first time, it has been swapped for another
    model. The pinned model must be the one served — or the load refused — never the other."""
    import builtins
    import io
    import os

    import joblib

    pinned, other = models["logistic"].estimator, models["pipeline"].estimator
    artifact = tmp_path / f"model.{fmt}"
    swap = tmp_path / f"swap.{fmt}"
    for estimator, path in ((pinned, artifact), (other, swap)):
        if fmt == "skops":
            skops.io.dump(estimator, path)
        else:
            joblib.dump(estimator, path)
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    real_open = builtins.open
    reads = 0

    def open_swapping(file: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        if Path(str(file)) == artifact and not isinstance(file, int):
            reads += 1
            if reads == 2:
                os.replace(swap, artifact)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_swapping)
    monkeypatch.setattr(io, "open", open_swapping)
    model = ServedModel.load(tmp_path, digest)
    X = models["logistic"].X
    assert np.array_equal(model.predict(X), pinned.predict(X))
    assert model.sha256 == digest


def test_missing_and_unloadable_artifacts(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        locate_artifact(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"notes\.txt"):
        locate_artifact(tmp_path)
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="cannot load"):
        ServedModel.load(tmp_path)


def test_a_single_model_file_of_another_name_is_found(
    models: dict[str, Fitted], tmp_path: Path
) -> None:
    import joblib

    joblib.dump(models["logistic"].estimator, tmp_path / "iris-v2.pkl")
    (tmp_path / "reference.json").write_text("{}")
    assert locate_artifact(tmp_path) == tmp_path / "iris-v2.pkl"
    joblib.dump(models["ridge"].estimator, tmp_path / "other.joblib")
    with pytest.raises(ModelLoadError, match="single"):
        locate_artifact(tmp_path)
    joblib.dump(models["ridge"].estimator, tmp_path / "model.joblib")
    assert locate_artifact(tmp_path) == tmp_path / "model.joblib"


def test_a_pickle_of_something_without_predict_is_refused(tmp_path: Path) -> None:
    save_model({"not": "a model"}, tmp_path)
    with pytest.raises(ModelLoadError, match="no predict"):
        ServedModel.load(tmp_path)


@pytest.mark.parametrize("kind", ["forest", "knn", "wrapper", "same-classes"])
def test_a_multi_output_classifier_is_refused_at_load_with_a_clear_message(
    models: dict[str, Fitted], tmp_path: Path, kind: str
) -> None:
    """Fitted on a 2-D y (one column per output), a classifier predicts rows of labels and has
    one class list per output; the protocols and metrics here take one label per row."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.neighbors import KNeighborsClassifier

    X = models["logistic"].X
    y = models["logistic"].estimator.predict(X)
    two_columns = np.c_[y, (X[:, 0] > 5.8).astype(int)]
    estimator = {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, two_columns),
        "knn": KNeighborsClassifier().fit(X, two_columns),
        "wrapper": MultiOutputClassifier(LogisticRegression(max_iter=500)).fit(X, two_columns),
        "same-classes": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, np.c_[y, y]),
    }[kind]
    save_model(estimator, tmp_path)
    with pytest.raises(ModelLoadError, match="2 outputs") as info:
        ServedModel.load(tmp_path)
    assert "one model per output" in str(info.value)


def test_skops_loads_safely_and_asks_for_untrusted_types(
    models: dict[str, Fitted], tmp_path: Path
) -> None:
    pipeline = models["pipeline"]
    skops.io.dump(pipeline.estimator, tmp_path / "model.skops")
    model = ServedModel.load(tmp_path)
    assert np.array_equal(model.predict(pipeline.X), pipeline.estimator.predict(pipeline.X))

    forest_dir = tmp_path / "forest"
    forest_dir.mkdir()
    skops.io.dump(models["forest"].estimator, forest_dir / "model.skops")
    with pytest.raises(ModelLoadError, match=r"sklearn\.tree\._tree\.Tree"):
        ServedModel.load(forest_dir)
    trusted = ServedModel.load(forest_dir, skops_trusted=("sklearn.tree._tree.Tree",))
    X = models["forest"].X
    assert np.array_equal(trusted.predict(X), models["forest"].estimator.predict(X))


def test_skops_without_the_extra_is_named(
    models: dict[str, Fitted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skops.io.dump(models["logistic"].estimator, tmp_path / "model.skops")
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ModelLoadError, match=r"modeldeploy\[serve\]"):
        ServedModel.load(tmp_path)


def test_mlflow_layout_is_found_through_mlmodel(models: dict[str, Fitted], tmp_path: Path) -> None:
    import joblib

    joblib.dump(models["ridge"].estimator, tmp_path / "model.pkl")
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n    sklearn_version: 1.9.1\n"
    )
    assert locate_artifact(tmp_path) == (tmp_path / "model.pkl").resolve()
    model = ServedModel.load(tmp_path)
    assert model.signature.task == "regression"
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: ../escape.pkl\n")
    with pytest.raises(ModelLoadError, match="not a file in its directory"):
        locate_artifact(tmp_path)


def test_signatures(models: dict[str, Fitted], tmp_path: Path) -> None:
    expected = {
        "logistic": ("classification", 4, True, [0, 1, 2], False),
        "pipeline": ("classification", 4, True, ["setosa", "versicolor", "virginica"], False),
        "forest": ("classification", 4, True, [0, 1, 2], True),  # trees split on NaN
        "ridge": ("regression", 10, False, None, False),
    }
    for name, (task, n_features, has_proba, classes, allow_nan) in expected.items():
        save_model(models[name].estimator, tmp_path / name)
        signature = ServedModel.load(tmp_path / name).signature
        assert signature.task == task
        assert signature.n_features == n_features
        assert signature.has_proba == has_proba
        got = signature.classes.tolist() if signature.classes is not None else None
        assert got == classes
        assert signature.allow_nan is allow_nan


# Both sides of SMALL_BATCH_VALUES (4 features a row): summed in Python, checked by numpy.
@pytest.mark.parametrize("rows_per_batch", [1, SMALL_BATCH_VALUES // 4 + 1])
@pytest.mark.parametrize("allow_nan", [False, True])
def test_rows_are_refused_for_a_nan_or_an_infinity_only(
    rows_per_batch: int, allow_nan: bool
) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    X = np.random.default_rng(0).normal(size=(50, 4))
    estimator = (HistGradientBoostingRegressor(max_iter=5) if allow_nan else Ridge()).fit(
        X, X.sum(axis=1)
    )
    model = ServedModel(estimator, Path("in-memory"), "-")
    assert model.signature.allow_nan is allow_nan
    rows = np.zeros((rows_per_batch, 4))
    # Finite values whose sum overflows to infinity: finite, accepted.
    rows[-1] = [1e308, 1e308, -0.0, 5e-324]
    model.check_rows(rows)
    for bad, refused in ((np.inf, True), (-np.inf, True), (np.nan, not allow_nan)):
        wrong = rows.copy()
        wrong[-1, 2] = bad
        if refused:
            with pytest.raises(BadRequest, match=f"row {rows_per_batch - 1}, feature 2 is"):
                model.check_rows(wrong)
        else:
            model.check_rows(wrong)
    # An infinity and a NaN together: the infinity is named, whatever the sum makes of them.
    both = rows.copy()
    both[-1, 0], both[-1, 3] = np.nan, np.inf
    with pytest.raises(BadRequest, match=f"feature {3 if allow_nan else 0} is"):
        model.check_rows(both)
