"""The server's Prometheus metrics: cheap numpy counters on the request path, rendered at scrape.

Every series carries `model` and `version` labels (CONVENTIONS.md), so canary analysis never
depends on scrape relabelling:

- `modeldeploy_requests_total{protocol,code}` — inference calls only (`v1` :predict, `v2`
  /infer); health, readiness and metadata endpoints (the kubelet's probes among them) and
  scrapes are never counted.
- `modeldeploy_request_duration_seconds{protocol}` — histogram of the same inference calls, from
  the first byte of the request to the response handed to the HTTP layer.
- `modeldeploy_predictions_total{class}` (classifiers) or `modeldeploy_prediction_value`
  (histogram, regressors; buckets from `reference.json` when it has them).
- `modeldeploy_feature_drift{feature}` — PSI over the drift window (see drift.py), present once
  the window holds `drift_min_rows` rows; `modeldeploy_drift_window_rows` says how many it holds.
- `modeldeploy_model_loaded` — 1 once the model is loaded (in every worker).
- `modeldeploy_model_info{sha256,estimator,path}` — 1, for dashboards; `path` is `fast` when the
  estimator's exact fast path serves float64 rows, `sklearn` when scikit-learn does (model.py).

With several workers each process keeps its counters in memory-mapped files under one directory
(an emptyDir or `$TMPDIR`); whichever worker answers a scrape sums them all.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from modeldeploy_serving.drift import DriftWindow, Reference, psi
from modeldeploy_serving.errors import RESPONSE_CODES
from modeldeploy_serving.model import ModelSignature, ServingPath

PROTOCOLS = ("v1", "v2")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DEFAULT_VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
_CODE_INDEX = {code: i for i, code in enumerate(RESPONSE_CODES)}


class CounterStore:
    """Named float64 arrays of one process: plain memory, or memory-mapped files in
    `directory/<worker>/` that the other workers' stores can read."""

    def __init__(self, directory: Path | None = None, worker: str = "0") -> None:
        self.directory = directory
        self.worker = worker
        self._arrays: dict[str, np.ndarray] = {}
        if directory is not None:
            (directory / worker).mkdir(parents=True, exist_ok=True)

    def array(self, name: str, shape: tuple[int, ...], fill: float = 0.0) -> np.ndarray:
        if self.directory is None:
            array = np.full(shape, fill)
        else:
            path = self.directory / self.worker / f"{name}.npy"
            array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
            array[...] = fill
        self._arrays[name] = array
        return array

    def gather(self, name: str) -> list[np.ndarray]:
        """This array from every worker that has it (same shape as ours, or ours alone)."""
        own = self._arrays.get(name)
        if self.directory is None:
            return [] if own is None else [own]
        found: list[np.ndarray] = []
        for path in sorted(self.directory.glob(f"*/{name}.npy")):
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError):  # a worker creating it right now
                continue
            if own is None or array.shape == own.shape:
                found.append(array)
        return found


@dataclass(frozen=True)
class BatchCounts:
    """What one batch adds to the counters (`ServingMetrics.count_batch`)."""

    drift: np.ndarray | None  # per (feature, bin), flat
    classes: np.ndarray | None  # rows per class, in the order of `classes`
    values: np.ndarray | None  # rows per value bucket (regressors)
    values_sum: float


class ServingMetrics:
    def __init__(
        self,
        model: str,
        version: str,
        store: CounterStore | None = None,
        *,
        drift_window_seconds: float = 600.0,
        drift_slices: int = 10,
        drift_min_rows: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.labels = {"model": model, "version": version}
        self.store = store or CounterStore()
        self.requests = self.store.array("requests", (len(PROTOCOLS), len(RESPONSE_CODES)))
        self.latency = self.store.array("latency", (len(PROTOCOLS), len(LATENCY_BUCKETS) + 1))
        self.latency_sum = self.store.array("latency_sum", (len(PROTOCOLS),))
        self.loaded = self.store.array("model_loaded", (1,))
        self.drift_window_seconds = drift_window_seconds
        self.drift_slices = drift_slices
        self.drift_min_rows = drift_min_rows
        self.clock = clock
        self.signature: ModelSignature | None = None
        self.sha256 = ""
        self.path: ServingPath = "sklearn"
        self.classes: list[str] = []
        self._class_index: dict[Any, int] = {}
        self.class_counts: np.ndarray | None = None
        self.value_buckets: tuple[float, ...] = DEFAULT_VALUE_BUCKETS
        self.value_counts: np.ndarray | None = None
        self.value_sum: np.ndarray | None = None
        self.drift: DriftWindow | None = None
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    # -- the request path ------------------------------------------------------------------

    def record_request(self, protocol: int, code: int, seconds: float) -> None:
        index = _CODE_INDEX.get(code)
        if index is not None:
            self.requests[protocol, index] += 1
        self.latency[protocol, bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum[protocol] += seconds

    def record_batch(
        self, rows: np.ndarray, predictions: np.ndarray | None, may_be_nan: bool = True
    ) -> None:
        """Input rows for drift, and the `predict` output when the request asked for it. On the
        event loop; a batch worked on in a thread is counted with `count_batch` there, then
        `add_batch` here."""
        if self.drift is not None:
            self.drift.add(rows, may_be_nan)
        if predictions is None:
            return
        if self.class_counts is not None and predictions.size <= 16:
            # the one-row request's fast path: no intermediate arrays
            for label in predictions.tolist():
                index = self._class_index.get(label)
                if index is not None:
                    self.class_counts[index] += 1
            return
        self.add_batch(BatchCounts(None, *self._prediction_counts(predictions)))

    def count_batch(
        self, rows: np.ndarray, predictions: np.ndarray | None, may_be_nan: bool = True
    ) -> BatchCounts:
        """What `record_batch` would add, computed without touching the counters: safe in a
        worker thread (the counters are only ever changed on the event loop)."""
        drift = self.drift.bin_counts(rows, may_be_nan) if self.drift is not None else None
        if predictions is None:
            return BatchCounts(drift, None, None, 0.0)
        return BatchCounts(drift, *self._prediction_counts(predictions))

    def add_batch(self, counts: BatchCounts) -> None:
        if counts.drift is not None and self.drift is not None:
            self.drift.add_counts(counts.drift)
        if counts.classes is not None and self.class_counts is not None:
            self.class_counts += counts.classes
        if counts.values is not None and self.value_counts is not None:
            self.value_counts += counts.values
            if self.value_sum is not None:
                self.value_sum[0] += counts.values_sum

    def _prediction_counts(
        self, predictions: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None, float]:
        """(rows per class, rows per value bucket, sum of the values) of a `predict` output."""
        if self.class_counts is not None:
            per_class = np.zeros(len(self.classes))
            labels, counts = np.unique(predictions, return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                index = self._class_index.get(label)
                if index is not None:
                    per_class[index] += count
            return per_class, None, 0.0
        if self.value_counts is not None:
            values = predictions.astype(np.float64, copy=False).reshape(-1)
            buckets = np.searchsorted(self.value_buckets, values, side="left")
            per_bucket = np.bincount(buckets, minlength=len(self.value_buckets) + 1)
            return None, per_bucket, float(values.sum())
        return None, None, 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def model_ready(
        self,
        signature: ModelSignature,
        reference: Reference | None,
        sha256: str,
        path: ServingPath = "sklearn",
    ) -> None:
        self.signature = signature
        self.sha256 = sha256
        self.path = path
        if signature.classes is not None:
            self.classes = [str(c) for c in signature.classes.tolist()]
            self._class_index = {c: i for i, c in enumerate(signature.classes.tolist())}
            self.class_counts = self.store.array("predictions", (len(self.classes),))
        elif signature.task == "regression":
            if reference is not None and reference.prediction_buckets:
                self.value_buckets = reference.prediction_buckets
            self.value_counts = self.store.array("values", (len(self.value_buckets) + 1,))
            self.value_sum = self.store.array("values_sum", (1,))
        if reference is not None:
            counts_shape, stamps_shape = DriftWindow.shapes(reference, self.drift_slices)
            self.drift = DriftWindow(
                reference,
                self.store.array("drift_counts", counts_shape),
                self.store.array("drift_stamps", stamps_shape, fill=-1.0),
                self.drift_window_seconds,
                self.clock,
            )
        self.loaded[0] = 1.0

    # -- the scrape ------------------------------------------------------------------------

    def render(self) -> bytes:
        return generate_latest(self._registry)

    def _sum(self, name: str) -> np.ndarray | None:
        arrays = self.store.gather(name)
        if not arrays:
            return None
        total: np.ndarray = np.sum(arrays, axis=0)
        return total

    def collect(self) -> Iterator[Metric]:
        names = list(self.labels)
        values = list(self.labels.values())
        requests = self._sum("requests")
        counter = CounterMetricFamily(
            "modeldeploy_requests",
            "Inference calls (V1 :predict, V2 /infer) by protocol and HTTP status code.",
            labels=[*names, "protocol", "code"],
        )
        if requests is not None:
            for p, protocol in enumerate(PROTOCOLS):
                for c, code in enumerate(RESPONSE_CODES):
                    if requests[p, c]:
                        counter.add_metric([*values, protocol, str(code)], float(requests[p, c]))
        yield counter

        latency, latency_sum = self._sum("latency"), self._sum("latency_sum")
        histogram = HistogramMetricFamily(
            "modeldeploy_request_duration_seconds",
            "Time from request to response of inference calls, by protocol.",
            labels=[*names, "protocol"],
        )
        if latency is not None and latency_sum is not None:
            for p, protocol in enumerate(PROTOCOLS):
                histogram.add_metric(
                    [*values, protocol],
                    _buckets(LATENCY_BUCKETS, latency[p]),
                    float(latency_sum[p]),
                )
        yield histogram

        loaded = self.store.gather("model_loaded")
        gauge = GaugeMetricFamily(
            "modeldeploy_model_loaded", "1 when the model is loaded and serving.", labels=names
        )
        gauge.add_metric(values, float(min(a[0] for a in loaded)) if loaded else 0.0)
        yield gauge

        if self.signature is None:
            return
        info = GaugeMetricFamily(
            "modeldeploy_model_info",
            "The served artifact.",
            labels=[*names, "sha256", "estimator", "path"],
        )
        info.add_metric([*values, self.sha256, self.signature.estimator_type, self.path], 1.0)
        yield info

        classes = self._sum("predictions")
        if classes is not None:
            family = CounterMetricFamily(
                "modeldeploy_predictions",
                "Predicted rows by class (the 'predict' output).",
                labels=[*names, "class"],
            )
            for label, count in zip(self.classes, classes.tolist(), strict=True):
                family.add_metric([*values, label], count)
            yield family

        value_counts, value_sum = self._sum("values"), self._sum("values_sum")
        if value_counts is not None and value_sum is not None:
            family_h = HistogramMetricFamily(
                "modeldeploy_prediction_value",
                "Predicted values (the 'predict' output of a regressor).",
                labels=names,
            )
            family_h.add_metric(
                values, _buckets(self.value_buckets, value_counts), float(value_sum[0])
            )
            yield family_h

        if self.drift is not None:
            windows = list(
                zip(
                    self.store.gather("drift_counts"),
                    self.store.gather("drift_stamps"),
                    strict=True,
                )
            )
            live = self.drift.live_counts(windows)
            rows = float(live[0].sum()) if live.size else 0.0
            rows_gauge = GaugeMetricFamily(
                "modeldeploy_drift_window_rows",
                "Rows in the drift window.",
                labels=names,
            )
            rows_gauge.add_metric(values, rows)
            yield rows_gauge
            drift = GaugeMetricFamily(
                "modeldeploy_feature_drift",
                "Population stability index of each feature over the drift window "
                "against the training reference.",
                labels=[*names, "feature"],
            )
            if rows >= self.drift_min_rows:
                for feature, value in zip(
                    self.drift.reference.features,
                    psi(live, self.drift.shares).tolist(),
                    strict=True,
                ):
                    drift.add_metric([*values, feature], value)
            yield drift


def _buckets(bounds: tuple[float, ...], counts: np.ndarray) -> list[tuple[str, float]]:
    cumulative = np.cumsum(counts).tolist()
    out = [(_le(b), c) for b, c in zip(bounds, cumulative, strict=False)]
    out.append(("+Inf", cumulative[-1]))
    return out


def _le(bound: float) -> str:
    return repr(float(bound))
