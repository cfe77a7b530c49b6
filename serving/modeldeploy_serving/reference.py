"""`modeldeploy reference`: write the drift reference (`reference.json`) next to a model.

    modeldeploy reference --model-dir DIR --data TRAIN.csv|TRAIN.npy [--bins 10] [--sha256 HEX]

The data is the training features, one row per sample: a CSV file (a first line that is not all
numbers is the header and names the features; empty cells are missing values) or a `.npy` array.
When DIR holds a model, its feature count is checked, its `feature_names_in_` name the features
of a header-less file, and a regressor's predictions on the data give the buckets of
`modeldeploy_prediction_value`. The server reads `DIR/reference.json` at start (drift.py).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
from pathlib import Path

import numpy as np

from modeldeploy_serving.drift import DEFAULT_BINS, build_reference, save_reference
from modeldeploy_serving.errors import ModelLoadError, ReferenceDataError
from modeldeploy_serving.model import ServedModel, locate_artifact

log = logging.getLogger("modeldeploy.reference")


def _number(cell: str) -> float:
    cell = cell.strip()
    return math.nan if cell == "" else float(cell)


def read_training_data(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """The rows of `path` as float64, and the header's feature names when there is one."""
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ReferenceDataError(f"cannot read {path}: {e}") from e
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise ReferenceDataError(f"{path} must hold a 2-D numeric array")
        return array.astype(np.float64), None
    try:
        with path.open(newline="") as f:
            lines = [row for row in csv.reader(f) if row]
    except OSError as e:
        raise ReferenceDataError(f"cannot read {path}: {e}") from e
    if not lines:
        raise ReferenceDataError(f"{path} is empty")
    header: list[str] | None = None
    try:
        [_number(c) for c in lines[0]]
    except ValueError:
        header, lines = [c.strip() for c in lines[0]], lines[1:]
    try:
        rows = [[_number(c) for c in line] for line in lines]
        array = np.array(rows, dtype=np.float64)
    except ValueError as e:
        raise ReferenceDataError(f"{path}: rows must hold the same number of numbers: {e}") from e
    if array.ndim != 2:
        raise ReferenceDataError(f"{path} holds no rows")
    return array, header


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="modeldeploy reference",
        description="Save the training-data reference the server's drift metrics compare against.",
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="where reference.json goes")
    parser.add_argument("--data", type=Path, required=True, help="training features: .csv or .npy")
    parser.add_argument("--bins", type=int, default=DEFAULT_BINS, help="quantile bins per feature")
    parser.add_argument("--sha256", default=None, help="pin of the model file, when loading it")
    parser.add_argument("--skops-trusted", action="append", default=[], metavar="TYPE")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    try:
        data, header = read_training_data(args.data)
        model = None
        try:
            locate_artifact(args.model_dir)
        except ModelLoadError:
            log.info("no model in %s: building the reference from the data alone", args.model_dir)
        else:
            model = ServedModel.load(args.model_dir, args.sha256, tuple(args.skops_trusted))
        names = header
        predictions = None
        if model is not None:
            expected = model.signature.n_features
            if expected is not None and data.shape[1] != expected:
                raise ReferenceDataError(
                    f"{args.data} has {data.shape[1]} columns; the model takes {expected} features"
                )
            if names is None and model.signature.feature_names is not None:
                names = list(model.signature.feature_names)
            if model.signature.task == "regression":
                complete = data[~np.isnan(data).any(axis=1)]
                predictions = model.estimator.predict(complete) if complete.size else None
        if names is None:
            names = [f"x{j}" for j in range(data.shape[1])]
        reference = build_reference(data, names, args.bins, predictions)
        path = save_reference(reference, args.model_dir)
    except (ReferenceDataError, ModelLoadError) as e:
        log.error("%s", e)
        return 1
    log.info("wrote %s: %d features, %d rows", path, len(reference.features), reference.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
