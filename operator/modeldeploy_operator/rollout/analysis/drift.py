"""Drift: the population stability index (PSI) between two prediction distributions.

Computed here from the `drift.canary` and `drift.stable` query results: per-class prediction
counts (classifiers) or prediction-value histogram buckets (regressors) of both versions over
the window. Fewer than `MIN_DRIFT_SAMPLES` predictions from either version is "no data": PSI over
a handful of predictions is noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from modeldeploy_operator.monitoring import metrics as m

if TYPE_CHECKING:  # the type only: PSI needs no HTTP client
    from modeldeploy_operator.rollout.analysis.prometheus import Sample

# Below this many predictions per version in the window the drift check reports no data.
MIN_DRIFT_SAMPLES: Final = 20
# Empty bins get this share instead of 0, so a class only one version predicts adds a large but
# finite term (the usual PSI convention).
PSI_EPSILON: Final = 1e-4


def _histogram_bins(cumulative: Mapping[str, float], bounds: Sequence[str]) -> dict[str, float]:
    """Per-bin counts from cumulative bucket counts at the given (sorted) upper bounds."""
    bins: dict[str, float] = {}
    previous = 0.0
    for le in bounds:
        # increase() extrapolates each bucket separately; a bucket can come out a hair below
        # the one before it. A negative bin count is such an artefact, not a measurement.
        bins[le] = max(0.0, cumulative[le] - previous)
        previous = max(previous, cumulative[le])
    return bins


def _split(samples: Iterable[Sample]) -> tuple[dict[str, float], dict[str, float]]:
    classes: dict[str, float] = {}
    buckets: dict[str, float] = {}
    for labels, value in samples:
        if not math.isfinite(value):
            continue
        if m.CLASS in labels:
            classes[labels[m.CLASS]] = classes.get(labels[m.CLASS], 0.0) + value
        elif m.BUCKET in labels:
            buckets[labels[m.BUCKET]] = buckets.get(labels[m.BUCKET], 0.0) + value
    return classes, buckets


def population_stability_index(
    canary: Mapping[str, float], stable: Mapping[str, float]
) -> float | None:
    """PSI: the sum over bins of (c - s) * ln(c / s), c and s the bins' shares of the counts.

    Symmetric, 0 for identical distributions, dependent only on the shares; None when either
    side counts fewer than `MIN_DRIFT_SAMPLES` predictions.
    """
    canary_total = sum(canary.values())
    stable_total = sum(stable.values())
    if canary_total < MIN_DRIFT_SAMPLES or stable_total < MIN_DRIFT_SAMPLES:
        return None
    psi = 0.0
    for key in set(canary) | set(stable):
        c = max(canary.get(key, 0.0) / canary_total, PSI_EPSILON)
        s = max(stable.get(key, 0.0) / stable_total, PSI_EPSILON)
        psi += (c - s) * math.log(c / s)
    return psi


def prediction_psi(canary: Iterable[Sample], stable: Iterable[Sample]) -> float | None:
    """PSI of the canary's predictions against stable's, from the `drift.*` query results.

    Classifiers compare per-class counts (a class only one version predicts counts too);
    regressors compare the histogram bins both versions share. None when either version has too
    few predictions, or one is a classifier and the other a regressor.
    """
    canary_classes, canary_buckets = _split(canary)
    stable_classes, stable_buckets = _split(stable)
    if canary_classes and stable_classes:
        return population_stability_index(canary_classes, stable_classes)
    if canary_buckets and stable_buckets:
        bounds = sorted(set(canary_buckets) & set(stable_buckets), key=float)
        if not bounds:
            return None
        return population_stability_index(
            _histogram_bins(canary_buckets, bounds), _histogram_bins(stable_buckets, bounds)
        )
    return None
