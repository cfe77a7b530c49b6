"""In-process cost of one call, fast path vs scikit-learn, per estimator family (not a test).

    .venv/bin/python bench/serving/fastpath.py [--repeat 5] [--output FILE]

Each model is fitted here on fixed data, wrapped in the server's `ServedModel` and called
through `ServedModel.run` as a request is, on float64 rows of batch 1 and 32: once with the fast
path the server would choose at load (`use_fast_path`, which also checks it against
scikit-learn), once with `fast_path = None` (scikit-learn under `assume_finite` and
`skip_parameter_validation`, as the server calls it). Each figure is the best of `--repeat`
timings of enough calls to take about 0.2 s, in microseconds per call. Run it on an idle
machine; the ratios matter more than the absolute numbers.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from modeldeploy_serving.model import Method, ServedModel
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "serving-fastpath.md"
BATCHES = (1, 32)
SECONDS_PER_TIMING = 0.2

Data = tuple[np.ndarray, np.ndarray]


def iris() -> Data:
    X, y = load_iris(return_X_y=True)
    return X, y


def tabular_classification() -> Data:
    X, y = make_classification(2000, 20, n_informative=10, n_classes=3, random_state=0)
    return X, y


def tabular_regression() -> Data:
    X, y = make_regression(2000, 20, noise=5.0, random_state=0)
    return X, y


def binary() -> Data:
    X, y = make_classification(2000, 20, random_state=0)
    return X, y


MODELS: list[tuple[str, Callable[[], Data], Callable[[], Any]]] = [
    ("LogisticRegression (iris)", iris, lambda: LogisticRegression(max_iter=1000)),
    ("LogisticRegression, binary (20 features)", binary, LogisticRegression),
    (
        "SGDClassifier log_loss (20 features)",
        tabular_classification,
        lambda: SGDClassifier(loss="log_loss", random_state=0),
    ),
    ("LinearSVC (20 features)", tabular_classification, lambda: LinearSVC(random_state=0)),
    ("LinearRegression (20 features)", tabular_regression, LinearRegression),
    ("Ridge (20 features)", tabular_regression, Ridge),
    ("SGDRegressor (20 features)", tabular_regression, lambda: SGDRegressor(random_state=0)),
    (
        "Pipeline: StandardScaler + LogisticRegression (iris)",
        iris,
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    ),
    (
        "Pipeline: SimpleImputer + MinMaxScaler + Ridge (20 features)",
        tabular_regression,
        lambda: make_pipeline(SimpleImputer(), MinMaxScaler(), Ridge()),
    ),
    ("DecisionTreeClassifier (iris)", iris, lambda: DecisionTreeClassifier(random_state=0)),
    (
        "RandomForest, 100 trees (iris)",
        iris,
        lambda: RandomForestClassifier(n_estimators=100, random_state=0),
    ),
    (
        "RandomForestRegressor, 100 trees (20 features)",
        tabular_regression,
        lambda: RandomForestRegressor(n_estimators=100, max_depth=12, random_state=0),
    ),
    (
        "ExtraTrees, 100 trees (20 features)",
        tabular_classification,
        lambda: ExtraTreesClassifier(n_estimators=100, max_depth=12, random_state=0),
    ),
    (
        "GradientBoosting, 100 stages (iris)",
        iris,
        lambda: GradientBoostingClassifier(random_state=0),
    ),
    (
        "HistGradientBoosting, 100 iterations (20 features)",
        tabular_classification,
        lambda: HistGradientBoostingClassifier(random_state=0),
    ),
    (
        "HistGradientBoostingRegressor, 100 iterations (20 features)",
        tabular_regression,
        lambda: HistGradientBoostingRegressor(random_state=0),
    ),
]


def per_call_us(call: Callable[[], Any], repeat: int) -> float:
    call()
    number, _ = timeit.Timer(call).autorange()
    number = max(1, int(number * SECONDS_PER_TIMING / 0.2))
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def measure(name: str, data: Callable[[], Data], make: Callable[[], Any], repeat: int) -> list[str]:
    X, y = data()
    model = ServedModel(make().fit(X, y), Path("in-memory"), "-")
    if not model.use_fast_path(None):
        return [f"| {name} | — | — | — | — | no fast path (see the log) |"]
    fast = model.fast_path
    methods: list[Method] = ["predict"]
    if fast is not None and fast.predict_proba is not None:
        methods.append("predict_proba")
    lines = []
    for batch in BATCHES:
        rows = np.ascontiguousarray(X[np.arange(batch) * 37 % len(X)], dtype=np.float64)
        for method in methods:
            model.fast_path = fast
            fast_us = per_call_us(lambda: model.run(method, rows), repeat)  # noqa: B023
            model.fast_path = None
            sklearn_us = per_call_us(lambda: model.run(method, rows), repeat)  # noqa: B023
            lines.append(
                f"| {name} | {batch} | `{method}` | {sklearn_us:,.1f} | {fast_us:,.1f} | "
                f"{sklearn_us / fast_us:,.1f}x |"
            )
            print(lines[-1], flush=True)
    model.fast_path = fast
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    table = [
        "| model | batch | method | scikit-learn µs/call | fast path µs/call | speed-up |",
        "|---|---:|---|---:|---:|---:|",
    ]
    load_before = os.getloadavg()[0]
    for name, data, make in MODELS:
        table += measure(name, data, make, args.repeat)
    load_after = os.getloadavg()[0]
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    header = [
        "# In-process cost per call: fast path vs scikit-learn",
        "",
        f"Written by `bench/serving/fastpath.py` on {stamp} UTC; {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}; load average before/after "
        f"{load_before:.2f} / {load_after:.2f}. `ServedModel.run` on float64 rows, best of "
        f"{args.repeat} timings; scikit-learn is called as the server calls it "
        "(`assume_finite`, `skip_parameter_validation`). Every fast path here passed the load-time "
        "check (bit-identical outputs) before it was timed.",
        "",
    ]
    args.output.write_text("\n".join([*header, *table, ""]))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
