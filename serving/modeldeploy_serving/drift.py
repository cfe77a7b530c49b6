"""Online input drift: per-feature PSI of recent requests against the training data.

The reference (`reference.json`, next to the model, written by `modeldeploy reference`) holds,
per feature, the interior cut points of its quantile bins over the training data and the share
of training rows in each bin, plus one last bin for missing values (NaN). On the request path the
server only bins the rows and adds them to counters (one vectorised comparison and a bincount);
PSI is computed when Prometheus scrapes, over a sliding window of time slices:

    PSI = Σ_bins (p_live - p_ref) · ln(p_live / p_ref), each share floored at 1e-4

Rules of thumb: < 0.1 no shift, 0.1-0.25 moderate, > 0.25 significant.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modeldeploy_serving.errors import ReferenceDataError

REFERENCE_FILE = "reference.json"
FORMAT = "modeldeploy.dev/drift-reference/v1"
DEFAULT_BINS = 10
SHARE_FLOOR = 1e-4


@dataclass(frozen=True)
class Reference:
    """Quantile bins of the training data, per feature."""

    features: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]
    shares: tuple[tuple[float, ...], ...]  # len(edges[j]) + 1 value bins, then the missing bin
    rows: int
    prediction_buckets: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not (len(self.features) == len(self.edges) == len(self.shares)) or not self.features:
            raise ReferenceDataError("reference needs features, edges and shares of equal length")
        for name, edges, shares in zip(self.features, self.edges, self.shares, strict=True):
            if any(not b > a for a, b in itertools.pairwise(edges)):
                raise ReferenceDataError(f"bin edges of feature {name!r} must increase strictly")
            if len(shares) != len(edges) + 2:
                raise ReferenceDataError(
                    f"feature {name!r} has {len(edges)} edges, so needs {len(edges) + 2} shares"
                )

    @property
    def width(self) -> int:
        """Bins per feature in the counter arrays (the widest feature, plus the missing bin)."""
        return max(len(e) for e in self.edges) + 2

    def padded_edges(self) -> np.ndarray:
        """(features, width - 2) edges, padded with +inf so every feature bins the same way."""
        out = np.full((len(self.features), self.width - 2), np.inf)
        for j, edges in enumerate(self.edges):
            out[j, : len(edges)] = edges
        return out

    def padded_shares(self) -> np.ndarray:
        """(features, width): shares with the missing bin last and empty padding bins."""
        out = np.zeros((len(self.features), self.width))
        for j, shares in enumerate(self.shares):
            out[j, : len(shares) - 1] = shares[:-1]
            out[j, -1] = shares[-1]
        return out

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "rows": self.rows,
            "features": [
                {"name": n, "edges": list(e), "shares": list(s)}
                for n, e, s in zip(self.features, self.edges, self.shares, strict=True)
            ],
        }
        if self.prediction_buckets is not None:
            doc["prediction_buckets"] = list(self.prediction_buckets)
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes, source: str = "reference") -> Reference:
        try:
            doc = orjson.loads(data)
            if doc.get("format") != FORMAT:
                raise ReferenceDataError(f"{source}: format is not {FORMAT!r}")
            features = doc["features"]
            buckets = doc.get("prediction_buckets")
            return cls(
                features=tuple(str(f["name"]) for f in features),
                edges=tuple(tuple(float(x) for x in f["edges"]) for f in features),
                shares=tuple(tuple(float(x) for x in f["shares"]) for f in features),
                rows=int(doc["rows"]),
                prediction_buckets=tuple(float(b) for b in buckets) if buckets else None,
            )
        except ReferenceDataError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise ReferenceDataError(f"{source} is not a drift reference: {e!r}") from e


def load_reference(model_dir: Path) -> Reference | None:
    path = model_dir / REFERENCE_FILE
    if not path.is_file():
        return None
    return Reference.from_json(path.read_bytes(), str(path))


def save_reference(reference: Reference, model_dir: Path) -> Path:
    """Write `reference.json` into `model_dir` atomically (temp file + rename)."""
    path = model_dir / REFERENCE_FILE
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".reference-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(reference.to_json())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def assign_bins(rows: np.ndarray, padded_edges: np.ndarray, may_be_nan: bool = True) -> np.ndarray:
    """Bin index per value: the number of edges <= value; NaN -> the missing bin (last)."""
    values = rows.astype(np.float64, copy=False)
    bins: np.ndarray = (values[:, :, None] >= padded_edges[None, :, :]).sum(axis=2)
    if may_be_nan:
        missing = np.isnan(values)
        if missing.any():
            bins[missing] = padded_edges.shape[1] + 1
    return bins


def build_reference(
    data: np.ndarray,
    features: Sequence[str],
    bins: int = DEFAULT_BINS,
    predictions: np.ndarray | None = None,
) -> Reference:
    """Quantile bins of `data` (rows x features); `predictions` → histogram buckets for them."""
    if data.ndim != 2 or data.shape[0] < 2:
        raise ReferenceDataError("reference data needs at least two rows of features")
    if len(features) != data.shape[1]:
        raise ReferenceDataError(f"{len(features)} feature names for {data.shape[1]} columns")
    if bins < 2:
        raise ReferenceDataError("a reference needs at least 2 bins per feature")
    if np.isinf(data).any():
        raise ReferenceDataError("reference data holds infinite values")
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    all_edges: list[tuple[float, ...]] = []
    all_shares: list[tuple[float, ...]] = []
    for j in range(data.shape[1]):
        column = data[:, j]
        present = column[~np.isnan(column)]
        edges = np.unique(np.quantile(present, quantiles)) if present.size else np.empty(0)
        # An edge equal to the column's minimum makes an always-empty first bin.
        edges = edges[edges > present.min()] if present.size else edges
        counts = np.bincount(
            assign_bins(column[:, None], edges[None, :])[:, 0], minlength=len(edges) + 2
        )
        all_edges.append(tuple(float(e) for e in edges))
        all_shares.append(tuple(float(c) / column.size for c in counts))
    buckets = None
    if predictions is not None and predictions.size and predictions.dtype.kind in "iuf":
        finite = predictions[np.isfinite(predictions)].astype(np.float64)
        if finite.size:
            buckets = tuple(float(b) for b in np.unique(np.quantile(finite, quantiles)))
    return Reference(
        features=tuple(features),
        edges=tuple(all_edges),
        shares=tuple(all_shares),
        rows=int(data.shape[0]),
        prediction_buckets=buckets,
    )


def psi(live_counts: np.ndarray, reference_shares: np.ndarray) -> np.ndarray:
    """PSI per feature from live bin counts (features x bins) and reference shares (same shape).

    Bins that are empty in both (padding) contribute nothing.
    """
    totals = live_counts.sum(axis=1, keepdims=True)
    live = live_counts / np.maximum(totals, 1)
    used = (live_counts > 0) | (reference_shares > 0)
    p = np.maximum(live, SHARE_FLOOR)
    q = np.maximum(reference_shares, SHARE_FLOOR)
    terms = np.where(used, (p - q) * np.log(p / q), 0.0)
    result: np.ndarray = terms.sum(axis=1)
    return result


class DriftWindow:
    """Binned counts of recent rows in time slices; the caller owns the arrays' storage.

    `counts` is (slices, features, bins) and `stamps` (slices,) holds the slice number each
    row of counts belongs to: a slice is zeroed when time moves on to reuse it.
    """

    def __init__(
        self,
        reference: Reference,
        counts: np.ndarray,
        stamps: np.ndarray,
        window_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.reference = reference
        self.edges = reference.padded_edges()
        self.shares = reference.padded_shares()
        self.counts = counts
        self.stamps = stamps
        self.slices = counts.shape[0]
        self.slice_seconds = window_seconds / self.slices
        self.clock = clock
        self._offsets = np.arange(len(reference.features)) * reference.width

    @staticmethod
    def shapes(reference: Reference, slices: int) -> tuple[tuple[int, int, int], tuple[int]]:
        return (slices, len(reference.features), reference.width), (slices,)

    def _slice(self) -> int:
        return int(self.clock() // self.slice_seconds)

    def _current(self) -> np.ndarray:
        """The counts of the current slice, flat (a view), zeroed when time has moved on."""
        number = self._slice()
        position = number % self.slices
        if self.stamps[position] != number:
            self.counts[position] = 0
            self.stamps[position] = number
        current: np.ndarray = self.counts[position].reshape(-1)
        return current

    def _bins(self, rows: np.ndarray, may_be_nan: bool) -> np.ndarray:
        bins: np.ndarray = (assign_bins(rows, self.edges, may_be_nan) + self._offsets).ravel()
        return bins

    def bin_counts(self, rows: np.ndarray, may_be_nan: bool = True) -> np.ndarray:
        """How many values of `rows` fall in each (feature, bin), flat, for `add_counts`. Reads
        only the reference, never the counts: safe in any thread."""
        counts: np.ndarray = np.bincount(
            self._bins(rows, may_be_nan), minlength=self.counts[0].size
        )
        return counts

    def add_counts(self, counts: np.ndarray) -> None:
        """Add `bin_counts` to the current slice."""
        self._current()[...] += counts

    def add(self, rows: np.ndarray, may_be_nan: bool = True) -> None:
        """Count `rows` in the current slice (`may_be_nan=False`: the caller has checked)."""
        if rows.shape[0] == 1:
            # one row: each feature's index appears once, no need for a bincount
            self._current()[self._bins(rows, may_be_nan)] += 1
        else:
            self.add_counts(self.bin_counts(rows, may_be_nan))

    def live_counts(self, windows: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Counts of the slices still in the window, summed over (counts, stamps) pairs."""
        now = self._slice()
        total = np.zeros(self.counts.shape[1:])
        for counts, stamps in windows:
            fresh = (stamps > now - self.slices) & (stamps <= now)
            total += counts[fresh].sum(axis=0)
        return total
