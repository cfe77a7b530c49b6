"""The check a fast path passes before it serves: bit-identical to scikit-learn on real rows.

The rows come from the drift reference when there is one (every training quantile edge, the
midpoints between them and values beyond both ends, so that tree splits and scaler ranges are
crossed; and rows of edges only, which a categorical column accepts), else from a seeded
generator at several magnitudes and of small integers (category codes), in shuffled order. They
are compared one by one and in batches of a few sizes (BLAS may take another code path for
another shape; both sides see the same shape each time), for `predict` and, when compiled,
`predict_proba`: the same dtype, the same shape and, for numbers, the same bytes. A batch
scikit-learn refuses (an unknown category) must be refused by the fast path with the same
exception type, and some batch must be accepted, else nothing was compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sklearn

from modeldeploy_serving.fastpath import ROW_DTYPE, FastPath, Kernel

SINGLE_ROWS = 8
BATCH_SIZES = (3, 32)
GENERATED_ROWS = 64
MISSING_SHARE = 0.1  # of generated values made NaN, for a model that takes missing values


class Mismatch(Exception):
    """The fast path differs from scikit-learn; the message says where."""


def fits(edges: Sequence[Sequence[float]] | None, n_features: int) -> bool:
    """Whether the reference's quantile `edges` describe the model's features (else the check
    rows are generated)."""
    return edges is not None and len(edges) == n_features and all(len(e) for e in edges)


def check_rows(
    n_features: int, edges: Sequence[Sequence[float]] | None, allow_nan: bool, seed: int = 0
) -> np.ndarray:
    """Float64 rows to compare on: from the reference's quantile edges, or generated."""
    rng = np.random.default_rng(seed)
    if edges is not None and fits(edges, n_features):
        columns = [_around(np.asarray(e, dtype=np.float64)) for e in edges]
        n_rows = max(GENERATED_ROWS, max(len(c) for c in columns))
        rows = np.column_stack([rng.choice(c, size=n_rows) for c in columns])
        # Every candidate of every feature in at least one row, in order.
        for j, column in enumerate(columns):
            rows[: len(column), j] = column
        observed = np.column_stack([rng.choice(e, size=GENERATED_ROWS // 2) for e in edges])
        rows = np.concatenate([observed[:SINGLE_ROWS], rows, observed[SINGLE_ROWS:]])
    else:
        scales = np.repeat([1.0, 10.0, 1000.0, 0.01], GENERATED_ROWS // 4)
        numbers = rng.standard_normal((GENERATED_ROWS, n_features)) * scales[:, None]
        codes = rng.integers(0, 3, size=(GENERATED_ROWS, n_features)).astype(np.float64)
        rows = rng.permutation(np.concatenate([numbers, codes]))
    if allow_nan:
        rows[rng.random(rows.shape) < MISSING_SHARE] = np.nan
    return np.ascontiguousarray(rows, dtype=ROW_DTYPE)


def _around(edges: np.ndarray) -> np.ndarray:
    """The edges, their midpoints, and a value a span beyond each end."""
    span = float(edges[-1] - edges[0]) or 1.0
    midpoints = (edges[:-1] + edges[1:]) / 2
    return np.concatenate([[edges[0] - span], edges, midpoints, [edges[-1] + span]])


def verify(fast: FastPath, estimator: Any, rows: np.ndarray) -> None:
    """`Mismatch` unless `fast` computes exactly what `estimator` computes on `rows`."""
    methods: list[tuple[str, Kernel, Callable[[np.ndarray], Any]]] = [
        ("predict", fast.predict, estimator.predict)
    ]
    if fast.predict_proba is not None:
        methods.append(("predict_proba", fast.predict_proba, estimator.predict_proba))
    batches = [rows[i : i + 1] for i in range(min(SINGLE_ROWS, len(rows)))]
    batches += [rows[:size] for size in BATCH_SIZES if size <= len(rows)]
    batches.append(rows)
    for name, kernel, reference in methods:
        compared = 0
        refusal: Exception | None = None
        for batch in batches:
            # Each side gets its own copy: an in-place step on one must not feed the other.
            try:
                with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                    expected = np.asarray(reference(batch.copy()))
            except Exception as e:
                refusal = e
                _refused_alike(name, len(batch), kernel, batch.copy(), e)
                continue
            problem = difference(kernel(batch.copy()), expected)
            if problem:
                raise Mismatch(f"{name} on {len(batch)} row(s): {problem}")
            compared += 1
        if not compared:
            raise Mismatch(
                f"scikit-learn refused every check batch of {name} ({refusal!r}), so nothing "
                "could be compared (a reference.json of the training data gives better rows)"
            )


def _refused_alike(
    name: str, n_rows: int, kernel: Kernel, batch: np.ndarray, refusal: Exception
) -> None:
    """`Mismatch` unless `kernel` refuses `batch` with the exception type scikit-learn raised."""
    try:
        kernel(batch)
    except Exception as e:
        if type(e) is type(refusal):
            return
        raise Mismatch(f"{name} on {n_rows} row(s) raises {e!r}, scikit-learn {refusal!r}") from e
    raise Mismatch(f"{name} on {n_rows} row(s) answers where scikit-learn raises {refusal!r}")


def difference(got: np.ndarray, expected: np.ndarray) -> str:
    """What differs between two outputs ("" when they are the same bits)."""
    if not isinstance(got, np.ndarray):
        return f"a {type(got).__name__} where scikit-learn returns an ndarray"
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, scikit-learn's is {expected.dtype}"
    if got.shape != expected.shape:
        return f"shape {got.shape}, scikit-learn's is {expected.shape}"
    if got.dtype.kind in "biufc":
        same = np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes()
    else:
        same = bool(np.array_equal(got, expected))
    if same:
        return ""
    # repr tells -0.0 from 0.0 and shows NaN, which == would hide.
    pairs = zip(got.reshape(-1).tolist(), expected.reshape(-1).tolist(), strict=True)
    found = next(((i, p) for i, p in enumerate(pairs) if repr(p[0]) != repr(p[1])), None)
    if found is None:
        return "the same values in other bits (NaN payloads)"
    index, (mine, theirs) = found
    return f"value {index} (flat) is {mine!r}, scikit-learn's is {theirs!r}"
