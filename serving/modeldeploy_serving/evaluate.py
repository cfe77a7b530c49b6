"""`modeldeploy evaluate`: score a candidate and the champion on one holdout, for the operator's
evaluation gate (a RetrainingRun's evaluator Job runs it on the server image).

Both registered versions are fetched from the MLflow registry as the serving pods fetch them
(`models:/NAME/VERSION`), loaded as the server loads them, and scored on the same bytes of the
holdout (downloaded once, its SHA-256 reported, and checked when pinned). The trainer's own
numbers are never read. A model that cannot be fetched, loaded or scored is reported with its
error, and a metric that cannot be computed (log loss without predict_proba) is left out: the
gate fails closed on both. The result is one JSON document, written to `--output` (the Job's
termination message) and stdout; the exit status is 0 whenever that document was written.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modeldeploy_serving.contract import EVALUATION_RESULT_MAX_BYTES, GREATER_IS_BETTER
from modeldeploy_serving.errors import FetchError, ModelLoadError
from modeldeploy_serving.fetch.http import download_http, http_client, tracking_server_headers
from modeldeploy_serving.fetch.publish import fetch
from modeldeploy_serving.fetch.source import FetchOptions
from modeldeploy_serving.model import ServedModel

log = logging.getLogger("modeldeploy.evaluate")


class HoldoutError(ValueError):
    """The holdout cannot be used: unreadable, the wrong bytes, or no label column."""


@dataclass(frozen=True)
class Holdout:
    features: np.ndarray
    labels: np.ndarray
    sha256: str


def _number(text: str) -> float:
    return float(text)


def read_holdout(data: bytes, label_column: str, expected_sha256: str | None) -> Holdout:
    """A CSV with a header row: every column but `label_column` is a numeric feature."""
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise HoldoutError(f"the holdout's sha256 is {digest}, not the pinned {expected_sha256}")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    if len(rows) < 2:
        raise HoldoutError("the holdout has no rows under its header")
    header, body = rows[0], [row for row in rows[1:] if row]
    if label_column not in header:
        raise HoldoutError(f"the holdout has no column {label_column!r} (it has {header})")
    label_at = header.index(label_column)
    try:
        features = np.array(
            [[_number(v) for i, v in enumerate(row) if i != label_at] for row in body],
            dtype=np.float64,
        )
    except ValueError as err:
        raise HoldoutError(f"a feature is not a number: {err}") from err
    raw_labels = [row[label_at] for row in body]
    try:
        labels: np.ndarray = np.array([_number(v) for v in raw_labels])
    except ValueError:
        labels = np.array(raw_labels)
    return Holdout(features, labels, digest)


def _accuracy(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(holdout.labels, model.predict(holdout.features)))


def _balanced_accuracy(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(holdout.labels, model.predict(holdout.features)))


def _f1_macro(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(holdout.labels, model.predict(holdout.features), average="macro"))


def _log_loss(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import log_loss

    if not hasattr(model, "predict_proba"):
        raise ValueError("the model has no predict_proba")
    probabilities = model.predict_proba(holdout.features)
    return float(log_loss(holdout.labels, probabilities, labels=list(model.classes_)))


def _r2(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(holdout.labels, model.predict(holdout.features)))


def _mean_absolute_error(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(holdout.labels, model.predict(holdout.features)))


def _root_mean_squared_error(model: Any, holdout: Holdout) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(holdout.labels, model.predict(holdout.features)))


METRICS: dict[str, Callable[[Any, Holdout], float]] = {
    "accuracy": _accuracy,
    "balancedAccuracy": _balanced_accuracy,
    "f1Macro": _f1_macro,
    "logLoss": _log_loss,
    "r2": _r2,
    "meanAbsoluteError": _mean_absolute_error,
    "rootMeanSquaredError": _root_mean_squared_error,
}
assert METRICS.keys() == GREATER_IS_BETTER.keys(), "every gate metric has its scorer"


def score(model: Any, holdout: Holdout, metrics: Sequence[str]) -> dict[str, Any]:
    """The metrics this model could be scored on; a metric that raises is left out (and
    logged), so the gate fails it closed."""
    scores: dict[str, float] = {}
    for name in metrics:
        try:
            value = METRICS[name](model, holdout)
        except Exception as err:  # a scorer's failure is this metric's answer, not the run's
            log.warning("%s could not be computed: %r", name, err)
            continue
        if math.isfinite(value):
            scores[name] = value
    return scores


def _evaluate_version(
    name: str, version: str, holdout: Holdout, metrics: Sequence[str], options: FetchOptions
) -> dict[str, Any]:
    try:
        with tempfile.TemporaryDirectory(prefix=f"evaluate-{version}-") as directory:
            fetch(f"models:/{name}/{version}", Path(directory) / "model", None, options)
            served = ServedModel.load(Path(directory) / "model")
            return {"version": version, "metrics": score(served.estimator, holdout, metrics)}
    except (FetchError, ModelLoadError, OSError, ValueError) as err:
        return {"version": version, "metrics": {}, "error": str(err)[:500]}


def _download(uri: str, timeout: float, tracking_uri: str) -> bytes:
    """The holdout's bytes; with MLflow's credentials when it is kept on the tracking server
    (its artifact proxy), as `modeldeploy fetch` sends them, and to no other host."""
    with tempfile.TemporaryDirectory(prefix="holdout-") as directory:
        target = Path(directory) / "holdout.csv"
        with http_client(timeout, tracking_server_headers(uri, tracking_uri)) as client:
            download_http(client, uri, target)
        return target.read_bytes()


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    metrics = [name for name in args.metrics.split(",") if name]
    unknown = sorted(set(metrics) - METRICS.keys())
    if unknown:
        raise HoldoutError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")
    holdout = read_holdout(
        _download(args.holdout, args.timeout, args.tracking_uri),
        args.label_column,
        args.holdout_sha256,
    )
    options = FetchOptions(timeout=args.timeout, mlflow_tracking_uri=args.tracking_uri)
    result = {
        "holdoutSha256": holdout.sha256,
        "rows": int(holdout.labels.shape[0]),
        "candidate": _evaluate_version(
            args.registered_model, args.candidate, holdout, metrics, options
        ),
        "champion": _evaluate_version(
            args.registered_model, args.champion, holdout, metrics, options
        ),
    }
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="modeldeploy evaluate",
        description="Score a candidate and the champion registered version on one holdout.",
    )
    parser.add_argument("--tracking-uri", required=True, help="the MLflow tracking server")
    parser.add_argument("--registered-model", required=True)
    parser.add_argument("--candidate", required=True, help="the candidate's registered version")
    parser.add_argument("--champion", required=True, help="the champion's registered version")
    parser.add_argument("--holdout", required=True, help="http(s) URL of the holdout CSV")
    parser.add_argument("--holdout-sha256", default=None, help="refuse other holdout bytes")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--metrics", required=True, help="comma-separated metric names")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network step")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = evaluate(args)
    except (HoldoutError, FetchError, OSError) as err:
        # No result: the operator fails the run (nothing was scored, nothing can be promoted).
        log.error("%s", err)
        return 1
    text = json.dumps(result, sort_keys=True)
    if len(text.encode()) > EVALUATION_RESULT_MAX_BYTES:
        log.error("the result is %d bytes, more than a termination message holds", len(text))
        return 1
    if args.output is not None:
        args.output.write_text(text)
    sys.stdout.write(text + "\n")
    return 0
