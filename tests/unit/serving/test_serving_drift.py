"""Reference bins, PSI, the sliding window, the `reference` command and the exported metrics."""

from __future__ import annotations

import re
from pathlib import Path

import modeldeploy_serving.reference as reference_command
import numpy as np
import orjson
import pytest
from modeldeploy_serving.app import ServingApp
from modeldeploy_serving.drift import (
    REFERENCE_FILE,
    DriftWindow,
    Reference,
    assign_bins,
    build_reference,
    load_reference,
    psi,
    save_reference,
)
from modeldeploy_serving.errors import ReferenceDataError
from modeldeploy_serving.metrics import CounterStore, ServingMetrics
from modeldeploy_serving.model import ServedModel
from modeldeploy_serving.settings import ServerSettings

from .asgi import call
from .conftest import Fitted, save_model


def _psi_by_hand(live: np.ndarray, ref: np.ndarray) -> float:
    """PSI written out plainly, independent of the vectorised implementation."""
    total = 0.0
    n = live.sum()
    for count, share in zip(live, ref, strict=True):
        if count == 0 and share == 0:
            continue
        p = max(count / n, 1e-4)
        q = max(share, 1e-4)
        total += (p - q) * np.log(p / q)
    return float(total)


def test_reference_bins_are_training_quantiles() -> None:
    rng = np.random.default_rng(1)
    data = np.column_stack([rng.normal(size=5000), rng.integers(0, 3, size=5000)]).astype(float)
    data[:50, 0] = np.nan
    ref = build_reference(data, ["a", "b"], bins=10)
    assert len(ref.edges[0]) == 9  # continuous: 10 bins of about 10% each
    shares = np.array(ref.shares[0])
    assert shares[-1] == pytest.approx(0.01)  # the missing bin
    assert np.all(np.abs(shares[:-1] - 0.099) < 0.01)
    assert sum(ref.shares[1]) == pytest.approx(1.0)
    assert len(ref.edges[1]) == 2  # three values, so three bins
    # the training data against itself has no drift
    bins = assign_bins(data, ref.padded_edges())
    counts = np.stack([np.bincount(bins[:, j], minlength=ref.width) for j in range(2)]).astype(
        float
    )
    assert np.allclose(psi(counts, ref.padded_shares()), 0.0, atol=1e-9)


def test_psi_matches_the_formula_and_grows_with_shift() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(size=(4000, 1))
    ref = build_reference(train, ["x"])
    values = []
    for shift in (0.0, 0.5, 1.5):
        live = rng.normal(loc=shift, size=(3000, 1))
        bins = assign_bins(live, ref.padded_edges())[:, 0]
        counts = np.bincount(bins, minlength=ref.width).astype(float)
        got = float(psi(counts[None, :], ref.padded_shares())[0])
        assert got == pytest.approx(_psi_by_hand(counts, ref.padded_shares()[0]))
        values.append(got)
    assert values[0] < 0.02 < 0.1 < values[1] < values[2]
    assert values[2] > 0.25


def test_reference_roundtrip_and_validation(tmp_path: Path) -> None:
    ref = build_reference(np.arange(40.0).reshape(20, 2), ["p", "q"], bins=4)
    save_reference(ref, tmp_path)
    assert load_reference(tmp_path) == ref
    assert load_reference(tmp_path / "elsewhere") is None
    (tmp_path / REFERENCE_FILE).write_text('{"format": "other"}')
    with pytest.raises(ReferenceDataError, match="format"):
        load_reference(tmp_path)
    with pytest.raises(ReferenceDataError, match="increase"):
        Reference(features=("a",), edges=((2.0, 1.0),), shares=((0.5, 0.2, 0.3, 0.0),), rows=3)
    with pytest.raises(ReferenceDataError, match="infinite"):
        build_reference(np.array([[1.0], [np.inf]]), ["a"])


def test_window_forgets_old_slices() -> None:
    ref = build_reference(np.arange(100.0)[:, None], ["x"], bins=4)
    now = [1000.0]
    counts_shape, stamps_shape = DriftWindow.shapes(ref, 4)
    window = DriftWindow(
        ref, np.zeros(counts_shape), np.full(stamps_shape, -1.0), 40.0, lambda: now[0]
    )
    low, high = np.full((30, 1), 1.0), np.full((30, 1), 99.0)
    window.add(low)
    now[0] += 20
    window.add(high)
    live = window.live_counts([(window.counts, window.stamps)])
    assert live.sum() == 60
    now[0] += 25  # the first slice is now 45 s old: out of the 40 s window
    live = window.live_counts([(window.counts, window.stamps)])
    assert live.sum() == 30 and live[0, 3] == 30
    now[0] += 100
    assert window.live_counts([(window.counts, window.stamps)]).sum() == 0


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_from_requests(models: dict[str, Fitted], tmp_path: Path) -> None:
    fitted = models["logistic"]
    save_model(fitted.estimator, tmp_path)
    ref = build_reference(fitted.X, ["sepal_l", "sepal_w", "petal_l", "petal_w"])
    settings = ServerSettings(model_dir=tmp_path, name="iris", version="3")
    metrics = ServingMetrics("iris", "3", drift_min_rows=20)
    app = ServingApp(settings, metrics, ServedModel.load(tmp_path), ref)

    rows = fitted.X  # traffic exactly like the training data
    reply = call(app, "POST", "/v1/models/iris:predict", orjson.dumps({"instances": rows.tolist()}))
    assert reply.status == 200
    call(app, "POST", "/v1/models/iris:predict", b"{")
    call(app, "GET", "/v2/health/ready")  # probes are not counted
    text = call(app, "GET", "/metrics").body.decode()

    requests = _samples(text, "modeldeploy_requests_total")
    assert requests == {
        'modeldeploy_requests_total{code="200",model="iris",protocol="v1",version="3"}': 1.0,
        'modeldeploy_requests_total{code="400",model="iris",protocol="v1",version="3"}': 1.0,
    }
    predicted = fitted.estimator.predict(rows)
    classes = _samples(text, "modeldeploy_predictions_total")
    for label in (0, 1, 2):
        key = f'modeldeploy_predictions_total{{class="{label}",model="iris",version="3"}}'
        assert classes[key] == float((predicted == label).sum())
    count = _samples(text, "modeldeploy_request_duration_seconds_count")
    assert (
        count['modeldeploy_request_duration_seconds_count{model="iris",protocol="v1",version="3"}']
        == 2
    )
    assert 'modeldeploy_model_loaded{model="iris",version="3"} 1.0' in text
    drift = _samples(text, "modeldeploy_feature_drift")
    assert set(drift) == {
        f'modeldeploy_feature_drift{{feature="{f}",model="iris",version="3"}}' for f in ref.features
    }
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in drift.values()), drift
    # every series names the model and the version
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert 'model="iris"' in line and 'version="3"' in line, line

    # shifted traffic: the petal features drift, visibly
    shifted = rows.copy()
    shifted[:, 2:] += 3.0
    for _ in range(3):
        call(app, "POST", "/v1/models/iris:predict", orjson.dumps({"instances": shifted.tolist()}))
    drift = _samples(call(app, "GET", "/metrics").body.decode(), "modeldeploy_feature_drift")
    petal = [v for k, v in drift.items() if "petal" in k]
    assert all(v > 0.25 for v in petal)


def test_drift_is_absent_below_the_minimum_rows(models: dict[str, Fitted], tmp_path: Path) -> None:
    fitted = models["logistic"]
    save_model(fitted.estimator, tmp_path)
    ref = build_reference(fitted.X, ["a", "b", "c", "d"])
    metrics = ServingMetrics("m", "1", drift_min_rows=100)
    app = ServingApp(
        ServerSettings(model_dir=tmp_path, name="m"), metrics, ServedModel.load(tmp_path), ref
    )
    call(app, "POST", "/v1/models/m:predict", orjson.dumps({"instances": fitted.X[:10].tolist()}))
    text = call(app, "GET", "/metrics").body.decode()
    assert not re.search(r"^modeldeploy_feature_drift\{", text, re.M)
    assert 'modeldeploy_drift_window_rows{model="m",version="1"} 10.0' in text


def test_regressor_values_histogram(models: dict[str, Fitted], tmp_path: Path) -> None:
    fitted = models["ridge"]
    save_model(fitted.estimator, tmp_path)
    predictions = fitted.estimator.predict(fitted.X)
    ref = build_reference(fitted.X, [f"x{i}" for i in range(10)], predictions=predictions)
    metrics = ServingMetrics("r", "1")
    app = ServingApp(
        ServerSettings(model_dir=tmp_path, name="r"), metrics, ServedModel.load(tmp_path), ref
    )
    rows = fitted.X[:50]
    call(app, "POST", "/v1/models/r:predict", orjson.dumps({"instances": rows.tolist()}))
    text = call(app, "GET", "/metrics").body.decode()
    total = _samples(text, "modeldeploy_prediction_value_count")
    assert list(total.values()) == [50.0]
    value_sum = next(iter(_samples(text, "modeldeploy_prediction_value_sum").values()))
    assert value_sum == pytest.approx(float(predictions[:50].sum()))
    buckets = _samples(text, "modeldeploy_prediction_value_bucket")
    assert len(buckets) == len(ref.prediction_buckets or ()) + 1


def test_counters_are_summed_across_workers(tmp_path: Path) -> None:
    first = ServingMetrics("m", "1", CounterStore(tmp_path, "0"))
    second = ServingMetrics("m", "1", CounterStore(tmp_path, "1"))
    first.record_request(0, 200, 0.001)
    second.record_request(0, 200, 0.002)
    second.record_request(1, 404, 0.002)
    for metrics in (first, second):
        text = metrics.render().decode()
        assert (
            'modeldeploy_requests_total{code="200",model="m",protocol="v1",version="1"} 2.0' in text
        )
        assert (
            'modeldeploy_requests_total{code="404",model="m",protocol="v2",version="1"} 1.0' in text
        )
        # loaded only when every worker is
        assert 'modeldeploy_model_loaded{model="m",version="1"} 0.0' in text


def test_reference_command(models: dict[str, Fitted], tmp_path: Path) -> None:
    fitted = models["ridge"]
    save_model(fitted.estimator, tmp_path)
    csv = tmp_path / "train.csv"
    header = ",".join(f"f{i}" for i in range(10))
    lines = [",".join(repr(float(v)) for v in row) for row in fitted.X]
    lines[3] = "," + lines[3].split(",", 1)[1]  # a missing value
    csv.write_text(header + "\n" + "\n".join(lines) + "\n")
    assert reference_command.main(["--model-dir", str(tmp_path), "--data", str(csv)]) == 0
    ref = load_reference(tmp_path)
    assert ref is not None
    assert ref.features == tuple(f"f{i}" for i in range(10))
    assert ref.rows == len(fitted.X)
    assert ref.prediction_buckets is not None and len(ref.prediction_buckets) == 9
    assert ref.shares[0][-1] == pytest.approx(1 / len(fitted.X))

    npy = tmp_path / "train.npy"
    np.save(npy, fitted.X[:, :3])
    assert reference_command.main(["--model-dir", str(tmp_path), "--data", str(npy)]) == 1


def test_one_row_at_a_time_counts_like_one_batch(models: dict[str, Fitted], tmp_path: Path) -> None:
    fitted = models["logistic"]
    ref = build_reference(fitted.X, ["a", "b", "c", "d"])
    model = ServedModel(fitted.estimator, tmp_path / "m", "0" * 64)
    one_by_one = ServingMetrics("m", "1", CounterStore(tmp_path, "0"))  # memory-mapped
    batched = ServingMetrics("m", "1")
    for metrics in (one_by_one, batched):
        metrics.model_ready(model.signature, ref, model.sha256)
    predictions = fitted.estimator.predict(fitted.X)
    for i in range(len(fitted.X)):
        one_by_one.record_batch(fitted.X[i : i + 1], predictions[i : i + 1], False)
    batched.record_batch(fitted.X, predictions, True)
    assert one_by_one.drift is not None and batched.drift is not None
    assert np.array_equal(one_by_one.drift.counts, batched.drift.counts)
    assert one_by_one.drift.counts.sum() == 4 * len(fitted.X)
    assert one_by_one.class_counts is not None and batched.class_counts is not None
    assert np.array_equal(one_by_one.class_counts, batched.class_counts)
