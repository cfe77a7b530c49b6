"""Analysis drift: PSI between the canary's and stable's predictions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modeldeploy_operator.rollout.analysis import drift
from modeldeploy_operator.rollout.analysis.drift import population_stability_index, prediction_psi

# ---------------------------------------------------------------------------------------------
# PSI.


def test_psi_of_a_known_shift() -> None:
    # (0.5 - 0.8) ln(0.5/0.8) + (0.5 - 0.2) ln(0.5/0.2)
    expected = -0.3 * math.log(0.625) + 0.3 * math.log(2.5)
    assert population_stability_index({"a": 50, "b": 50}, {"a": 80, "b": 20}) == pytest.approx(
        expected
    )


def test_psi_of_a_class_only_one_version_predicts_is_large_but_finite() -> None:
    psi = population_stability_index({"a": 100}, {"a": 50, "b": 50})
    assert psi is not None and 1 < psi < 10


def test_psi_needs_enough_predictions_on_both_sides() -> None:
    few = drift.MIN_DRIFT_SAMPLES - 1
    assert population_stability_index({"a": few}, {"a": 1000}) is None
    assert population_stability_index({"a": 1000}, {"a": few}) is None
    assert population_stability_index({"a": few + 1}, {"a": few + 1}) == 0


counts = st.dictionaries(
    st.sampled_from("abcdef"), st.floats(min_value=0, max_value=1e6), min_size=1
).filter(lambda d: sum(d.values()) >= drift.MIN_DRIFT_SAMPLES)


@given(counts, counts, st.floats(min_value=1, max_value=1000))
def test_psi_is_symmetric_non_negative_and_depends_only_on_shares(
    p: dict[str, float], q: dict[str, float], scale: float
) -> None:
    forward = population_stability_index(p, q)
    assert forward is not None and forward >= 0
    assert population_stability_index(q, p) == pytest.approx(forward, rel=1e-9, abs=1e-12)
    scaled = population_stability_index({k: v * scale for k, v in p.items()}, q)
    assert scaled == pytest.approx(forward, rel=1e-6, abs=1e-9)
    assert population_stability_index(p, p) == pytest.approx(0, abs=1e-12)


def classes(**n: float) -> list[tuple[dict[str, str], float]]:
    return [({"class": name}, value) for name, value in n.items()]


def buckets(*cumulative: tuple[str, float]) -> list[tuple[dict[str, str], float]]:
    return [({"le": le}, value) for le, value in cumulative]


def test_prediction_psi_compares_class_counts() -> None:
    assert prediction_psi(classes(a=50, b=50), classes(a=80, b=20)) == pytest.approx(
        population_stability_index({"a": 50, "b": 50}, {"a": 80, "b": 20})
    )


def test_prediction_psi_turns_cumulative_buckets_into_bins() -> None:
    canary = buckets(("0.5", 10), ("1", 40), ("+Inf", 100))
    stable = buckets(("+Inf", 100), ("0.5", 30), ("1", 60))  # order does not matter
    assert prediction_psi(canary, stable) == pytest.approx(
        population_stability_index(
            {"0.5": 10, "1": 30, "+Inf": 60}, {"0.5": 30, "1": 30, "+Inf": 40}
        )
    )


def test_prediction_psi_uses_only_the_bucket_bounds_both_versions_have() -> None:
    canary = buckets(("0.5", 10), ("1", 40), ("+Inf", 100))
    stable = buckets(("1", 60), ("+Inf", 100))
    assert prediction_psi(canary, stable) == pytest.approx(
        population_stability_index({"1": 40, "+Inf": 60}, {"1": 60, "+Inf": 40})
    )


def test_extrapolation_artefacts_never_make_a_negative_bin() -> None:
    canary = buckets(("0.5", 30.2), ("1", 30.0), ("+Inf", 100))
    psi = prediction_psi(canary, buckets(("0.5", 30), ("1", 30), ("+Inf", 100)))
    assert psi is not None and psi < 0.01


def test_prediction_psi_has_no_data_for_a_classifier_against_a_regressor_or_nothing() -> None:
    assert prediction_psi(classes(a=100), buckets(("+Inf", 100))) is None
    assert prediction_psi([], classes(a=100)) is None
    assert prediction_psi(classes(a=math.nan), classes(a=100)) is None
