"""Pipelines of preprocessing steps ending in a compiled estimator.

Mirrors scikit-learn 1.9.1's `Pipeline.predict` / `.predict_proba` (each non-passthrough step's
`transform`, then the final step's method) with the transforms of `StandardScaler`,
`MinMaxScaler` (sklearn/preprocessing/_data.py), `SimpleImputer` (sklearn/impute/_base.py),
`OneHotEncoder` (sklearn/preprocessing/_encoders.py) and `ColumnTransformer`
(sklearn/compose/_column_transformer.py: each transformer on its columns, weighted, then
`np.hstack`) on dense float64 rows. Each transform works on a copy, as those transforms do with
their default `copy=True`, so a request's rows are never changed. A step configured to output
pandas (`set_output`) is not compiled: its output is a DataFrame, not the array computed here;
nor is a ColumnTransformer whose output is sparse (the final step would then multiply a sparse
matrix, another computation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

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
    if type(step) is OneHotEncoder:
        return _one_hot_encoder(step)
    if type(step) is ColumnTransformer:
        return _column_transformer(step)
    if type(step) is Pipeline:
        return _transforming_pipeline(step)
    if type(step) is FunctionTransformer and step.func is None and not step.validate:
        return _identity
    raise Unsupported(f"the Pipeline step {name} has no fast path")


def _identity(rows: np.ndarray) -> np.ndarray:
    """A passthrough (`FunctionTransformer()`): the columns as they came."""
    return rows


def _transforming_pipeline(pipeline: Any) -> Kernel:
    """`Pipeline.transform` (a Pipeline inside a ColumnTransformer): every step's transform."""
    kernels = [
        compile_transform(step)
        for _, step in pipeline.steps
        if step is not None and step != "passthrough"
    ]

    def transform(rows: np.ndarray) -> np.ndarray:
        for kernel in kernels:
            rows = kernel(rows)
        return rows

    return transform


def _column_transformer(transformer: Any) -> Kernel:
    """`ColumnTransformer.transform` with a dense output: each fitted transformer (in the order
    `_iter` yields them, drops and empty selections skipped) on its columns, times its weight,
    side by side."""
    if transformer.sparse_output_:
        raise Unsupported("ColumnTransformer with a sparse output")
    parts: list[tuple[Any, Kernel, float | None]] = []
    for name, step, columns, weight in transformer._iter(
        fitted=True, column_as_labels=False, skip_drop=True, skip_empty_columns=True
    ):
        kernel = _identity if step == "passthrough" else compile_transform(step)
        parts.append((_column_selector(name, columns), kernel, weight))

    def transform(rows: np.ndarray) -> np.ndarray:
        if not parts:
            return np.zeros((rows.shape[0], 0))
        outputs = []
        for selector, kernel, weight in parts:
            part = kernel(rows[:, selector])
            outputs.append(part if weight is None else part * weight)
        return np.hstack(outputs)

    return transform


def _column_selector(name: str, columns: Any) -> Any:
    """What selects `columns` from a 2-D array as `_safe_indexing(X, columns, axis=1)` does on
    a numpy array: a slice, or integer positions or a boolean mask as an array. A scalar would
    select a 1-D array, names select nothing in an array: neither is compiled."""
    if isinstance(columns, slice):
        return columns
    selector = np.asarray(columns)
    if selector.ndim != 1 or selector.dtype.kind not in "biu":
        raise Unsupported(f"ColumnTransformer's {name!r} selects columns by {columns!r}")
    return selector


def _one_hot_encoder(encoder: Any) -> Kernel:
    """`OneHotEncoder.transform` of numeric categories, dense: 1 in the column of each known
    category, 0 elsewhere; an unknown one raises the `ValueError` scikit-learn raises
    (handle_unknown="error") or leaves its columns 0 ("ignore")."""
    name = type(encoder).__name__
    if encoder.drop is not None:
        raise Unsupported(f"{name} with drop={encoder.drop!r}")
    if encoder.handle_unknown not in ("error", "ignore"):
        raise Unsupported(f"{name} with handle_unknown={encoder.handle_unknown!r}")
    if encoder._infrequent_enabled:
        raise Unsupported(f"{name} grouping infrequent categories")
    categories = [np.asarray(c) for c in encoder.categories_]
    for j, known in enumerate(categories):
        if known.dtype.kind not in "fiu" or (known.dtype.kind == "f" and np.isnan(known).any()):
            raise Unsupported(f"{name} column {j} has {known.dtype} categories (or NaN among them)")
    offsets = np.cumsum([0, *(len(c) for c in categories)])
    width = int(offsets[-1])
    dtype = encoder.dtype
    raise_unknown = encoder.handle_unknown == "error"

    def transform(rows: np.ndarray) -> np.ndarray:
        encoded = np.zeros((rows.shape[0], width), dtype=dtype)
        for j, known in enumerate(categories):
            values = rows[:, j]
            codes = np.searchsorted(known, values)
            found = codes < len(known)
            found[found] = known[codes[found]] == values[found]
            if raise_unknown and not found.all():
                unknown = list(np.unique(values[~found]))
                raise ValueError(
                    f"Found unknown categories {unknown} in column {j} during transform"
                )
            encoded[np.flatnonzero(found), offsets[j] + codes[found]] = 1
        return encoded

    return transform


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
