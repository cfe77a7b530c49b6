"""Pipelines of preprocessing steps ending in a compiled estimator.

Mirrors scikit-learn 1.9.1's `Pipeline.predict` / `.predict_proba` (each non-passthrough step's
`transform`, then the final step's method) with the transforms of `StandardScaler`,
`MinMaxScaler` (sklearn/preprocessing/_data.py) and `SimpleImputer` (sklearn/impute/_base.py)
on dense float64 rows. Each transform works on a copy, as those transforms do with their default
`copy=True`, so a request's rows are never changed. A step configured to output pandas
(`set_output`) is not compiled: its output is a DataFrame, not the array computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from modeldeploy_serving.fastpath import FastPath, Kernel, Unsupported, require_dense

SUPPORTED = frozenset((Pipeline,))


def compile_estimator(pipeline: Any) -> FastPath:
    from modeldeploy_serving.fastpath import compile_estimator as compile_final

    if pipeline.memory is not None:
        raise Unsupported("Pipeline with memory caching")
    *steps, (_, final) = pipeline.steps
    transforms = [
        compile_transform(step) for _, step in steps if step is not None and step != "passthrough"
    ]
    if final is None or final == "passthrough":
        raise Unsupported("Pipeline ends in passthrough: it has no predict")
    try:
        end = compile_final(final)
    except Unsupported as e:
        raise Unsupported(f"Pipeline's final step: {e}") from e

    def prepare(rows: np.ndarray) -> np.ndarray:
        for transform in transforms:
            rows = transform(rows)
        return rows

    final_predict, final_proba = end.predict, end.predict_proba
    proba: Kernel | None = None
    if final_proba is not None:
        proba = lambda rows: final_proba(prepare(rows))  # noqa: E731
    names = [type(step).__name__ for _, step in steps if step is not None and step != "passthrough"]
    return FastPath(
        lambda rows: final_predict(prepare(rows)),
        proba,
        f"Pipeline({', '.join([*names, end.description])})",
    )


def compile_transform(step: Any) -> Kernel:
    """The `transform` of one preprocessing step on float64 rows; `Unsupported` for others."""
    name = type(step).__name__
    output = getattr(step, "_sklearn_output_config", {}).get("transform", "default")
    if output != "default":
        raise Unsupported(f"{name} is set to output {output!r}")
    if type(step) is StandardScaler:
        return _standard_scaler(step)
    if type(step) is MinMaxScaler:
        return _min_max_scaler(step)
    if type(step) is SimpleImputer:
        return _simple_imputer(step)
    raise Unsupported(f"the Pipeline step {name} has no fast path")


def _standard_scaler(scaler: Any) -> Kernel:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def transform(rows: np.ndarray) -> np.ndarray:
        scaled = rows.copy()
        if mean is not None:
            scaled -= mean.astype(scaled.dtype)
        if scale is not None:
            scaled /= scale.astype(scaled.dtype)
        return scaled

    return transform


def _min_max_scaler(scaler: Any) -> Kernel:
    factor, offset = scaler.scale_, scaler.min_
    low, high = scaler.feature_range
    clip = bool(scaler.clip)

    def transform(rows: np.ndarray) -> np.ndarray:
        scaled = rows.copy()
        scaled *= factor
        scaled += offset
        if clip:
            np.clip(
                scaled,
                np.asarray(low, dtype=scaled.dtype),
                np.asarray(high, dtype=scaled.dtype),
                out=scaled,
            )
        return scaled

    return transform


def _simple_imputer(imputer: Any) -> Kernel:
    """Missing values (NaN) replaced by the fitted statistic of their column: assignment only,
    no arithmetic, so the values are those `SimpleImputer.transform` writes."""
    name = type(imputer).__name__
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise Unsupported(f"{name} with missing_values={missing!r} (only NaN is compiled)")
    if imputer.add_indicator:
        raise Unsupported(f"{name} with add_indicator=True")
    statistics = imputer.statistics_
    require_dense(name, statistics_=statistics)
    fill_dtype = np.dtype(imputer._fill_dtype)  # the dtype of X at fit, which fills are cast to
    if fill_dtype.kind not in "fiu":
        raise Unsupported(f"{name} fitted on {fill_dtype} data")
    try:
        fill = statistics.astype(fill_dtype, copy=False)
    except (TypeError, ValueError) as e:
        raise Unsupported(f"{name}'s statistics are not {fill_dtype} numbers: {e}") from e
    if not imputer.keep_empty_features and np.isnan(fill.astype(np.float64)).any():
        raise Unsupported(f"{name} drops features never observed in training")

    def transform(rows: np.ndarray) -> np.ndarray:
        imputed = rows.copy()
        missing_mask = np.isnan(imputed)
        if missing_mask.any():
            imputed[missing_mask] = np.broadcast_to(fill, imputed.shape)[missing_mask]
        return imputed

    return transform
