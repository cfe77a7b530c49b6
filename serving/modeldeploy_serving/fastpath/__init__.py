"""Exact fast paths: a fitted estimator compiled into plain functions of float64 rows that compute
what its `predict` / `predict_proba` compute, without scikit-learn's per-call validation.

"Exact" is meant bit for bit: each kernel runs the numpy operations of scikit-learn 1.9.1's
method on the same arrays in the same order, or its compiled kernels (a tree's `tree_.predict`),
accumulated in the same order. Where scikit-learn calls a numpy function that only calls the
array's method of the same name (`np.argmax(a, axis=1)` is `a.argmax(axis=1)`, `np.take`), the
kernels call the method: the same operation without numpy's dispatch, which costs more than the
arithmetic on a few rows. Only the checks are gone (fitted? feature count? finite? dtype?),
which the server does once per request itself (`ServedModel.check_rows`). What is supported is
matched by exact type (a subclass may override `predict`); everything else raises `Unsupported`
with the reason, and the caller serves it with scikit-learn. `verify` (verify.py) compares the
kernels with scikit-learn on real rows before they serve.

One module per family: linear.py, trees.py, boosting.py, pipeline.py (the preprocessing steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Kernel = Callable[[np.ndarray], np.ndarray]
"""A function of checked float64 rows (2-D) to what a method of the estimator returns."""

ROW_DTYPE = np.dtype(np.float64)
"""The only dtype the kernels take: the one the protocols decode JSON numbers to. Rows of any
other dtype (a V2 FP32 tensor) go to scikit-learn, whose conversions then apply unchanged."""


class Unsupported(Exception):
    """The estimator has no exact fast path; the message says why (logged at load)."""


@dataclass(frozen=True)
class FastPath:
    """The compiled kernels of one estimator; `predict_proba` is None when only `predict` has
    one (the estimator's own `predict_proba` then serves that output)."""

    predict: Kernel
    predict_proba: Kernel | None
    description: str  # what was compiled, e.g. "Pipeline(StandardScaler, LogisticRegression)"


def compile_estimator(estimator: Any) -> FastPath:
    """The fast path of `estimator`; `Unsupported` naming why there is none."""
    # Imported here: each family module imports this one for `Kernel` and `Unsupported`.
    from modeldeploy_serving.fastpath import boosting, linear, pipeline, trees

    families: tuple[tuple[frozenset[type], Callable[[Any], FastPath]], ...] = (
        (linear.SUPPORTED, linear.compile_estimator),
        (trees.SUPPORTED, trees.compile_estimator),
        (boosting.SUPPORTED, boosting.compile_estimator),
        (pipeline.SUPPORTED, pipeline.compile_estimator),
    )
    for supported, compile_family in families:
        if type(estimator) in supported:
            return compile_family(estimator)
    raise Unsupported(f"{type(estimator).__name__} has no fast path")


def require_dense(name: str, **arrays: Any) -> None:
    """`Unsupported` unless every one of `arrays` is a numpy array (not sparse, not a list)."""
    for attribute, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise Unsupported(
                f"{name}.{attribute} is a {type(value).__name__}, not a dense numpy array"
            )
